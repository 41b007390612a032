"""Board pages and JSON: who may see what, and what they see."""

import time

from asgiref.sync import async_to_sync
from django.db import connection
from django.test import TestCase, override_settings
from django.test.utils import CaptureQueriesContext

from dashboard.rows import agent_row, queue_row
from streams.floor import AgentState, QueueState
from streams.snapshots import get_snapshot_store, reset_snapshot_store
from tests.personas import FAST_HASHERS, make_personas


@override_settings(REDIS_URL="", PASSWORD_HASHERS=FAST_HASHERS)
class BoardViewTests(TestCase):
    """Pages and the API, seen by each persona."""

    @classmethod
    def setUpTestData(cls):
        cls.p = make_personas()

    def setUp(self):
        reset_snapshot_store()
        self.addCleanup(reset_snapshot_store)

    def store_rows(self, *, live_at: float | None = None, seq: int = 4):
        p = self.p
        sales, support = p.config(p.sales), p.config(p.support)
        rows = [
            queue_row(QueueState(source=p.source, queue_id="q-sales", waiting=4), sales),
            queue_row(QueueState(source=p.source, queue_id="q-support", waiting=1), support),
            agent_row(
                AgentState(
                    source=p.source,
                    agent_id="u1",
                    name="Ann <A>",
                    presence="on_queue",
                    routing_status="IDLE",
                    queue_ids=frozenset({"q-sales"}),
                ),
                {"q-sales": sales, "q-support": support},
            ),
            agent_row(
                AgentState(
                    source=p.source, agent_id="u2", name="Bob", presence="break", queue_ids=frozenset({"q-support"})
                ),
                {"q-sales": sales, "q-support": support},
            ),
        ]
        now = time.time()
        async_to_sync(get_snapshot_store().write)(
            p.board.pk,
            epoch="e1",
            seq=seq,
            upserts={row["key"]: row for row in rows},
            removed=(),
            server_time=now,
            live_at=now if live_at is None else live_at,
            health={"state": "live", "detail": ""},
            reset=True,
        )
        return {row["key"]: row for row in rows}

    # -- health check -------------------------------------------------------------

    def test_it_answers_the_health_check_without_login_or_queries(self):
        with self.assertNumQueries(0):
            response = self.client.get("/healthz")
        assert response.status_code == 200
        assert response.content == b"ok"

    # -- board list -----------------------------------------------------------------

    def test_it_sends_anonymous_visitors_to_the_login_page(self):
        for url in ("/", "/boards/sales/"):
            response = self.client.get(url)
            assert response.status_code == 302
            assert response["Location"].startswith("/login/?next=")

    def test_it_lists_only_the_boards_a_supervisor_may_open(self):
        self.client.force_login(self.p.supervisor)
        response = self.client.get("/")
        assert response.status_code == 200
        assert b"Sales floor" in response.content
        assert b"Billing floor" not in response.content

    def test_it_lists_nothing_for_an_outsider(self):
        self.client.force_login(self.p.outsider)
        response = self.client.get("/")
        assert b"Sales floor" not in response.content
        assert b"No boards are shared with you" in response.content

    def test_it_lets_a_supervisor_in_through_the_login_page(self):
        response = self.client.post(
            "/login/?next=/boards/sales/",
            {"username": "sue", "password": "correct horse battery staple", "next": "/boards/sales/"},
        )
        assert response.status_code == 302
        assert response["Location"] == "/boards/sales/"
        assert self.client.get("/boards/sales/").status_code == 200
        # Signing in is not admin access: the admin still wants staff.
        assert self.client.get("/admin/").status_code == 302

    # -- board page -----------------------------------------------------------------

    def test_it_shows_the_board_with_its_rows_rendered_in_place(self):
        rows = self.store_rows()
        self.client.force_login(self.p.supervisor)
        response = self.client.get("/boards/sales/")
        assert response.status_code == 200
        html = response.content.decode()
        for row in rows.values():
            assert row["html"] in html
        assert 'ws-connect="/ws/boards/sales/"' in html
        assert 'data-kind="page" data-epoch="e1" data-seq="4"' in html
        assert "Ann &lt;A&gt;" in html
        assert "htmx-2" in html and "hx-ws-2" in html and "dashboard/board.js" in html
        assert 'role="status" aria-live="polite"' in html

    def test_it_renders_the_queue_rows_in_name_order(self):
        self.store_rows()
        self.client.force_login(self.p.supervisor)
        html = self.client.get("/boards/sales/").content.decode()
        assert html.index(f'id="q-{self.p.sales.pk}"') < html.index(f'id="q-{self.p.support.pk}"')

    def test_it_applies_the_filters_in_the_address(self):
        rows = self.store_rows()
        self.client.force_login(self.p.supervisor)
        html = self.client.get(f"/boards/sales/?queue={self.p.support.pk}&status=break").content.decode()
        assert f'id="q-{self.p.support.pk}"' in html
        assert f'id="q-{self.p.sales.pk}"' not in html
        assert rows[f"a-{self.p.source}-u2"]["html"] in html
        assert "Ann &lt;A&gt;" not in html
        assert f'name="queue" value="{self.p.support.pk}" checked' in html
        assert 'name="status" value="break" checked' in html

    def test_it_shows_an_empty_board_before_the_worker_has_written(self):
        self.client.force_login(self.p.supervisor)
        response = self.client.get("/boards/sales/")
        assert response.status_code == 200
        assert b'<tbody id="queue-rows"></tbody>' in response.content
        assert b'data-epoch="" data-seq="0"' in response.content

    def test_it_shows_only_the_panels_the_board_has(self):
        self.p.board.panels = ["queues"]
        self.p.board.save()
        self.client.force_login(self.p.supervisor)
        html = self.client.get("/boards/sales/").content.decode()
        assert 'id="queue-rows"' in html
        assert 'id="agent-rows"' not in html

    def test_it_hides_a_board_from_a_supervisor_of_another_team(self):
        self.client.force_login(self.p.other_supervisor)
        assert self.client.get("/boards/sales/").status_code == 404

    def test_it_hides_a_board_from_an_outsider(self):
        self.client.force_login(self.p.outsider)
        assert self.client.get("/boards/sales/").status_code == 404

    def test_it_answers_a_forbidden_board_exactly_as_a_missing_one(self):
        # Otherwise trying slugs tells a signed-in user which boards exist.
        self.client.force_login(self.p.other_supervisor)
        for prefix in ("/boards/", "/api/boards/"):
            hidden, missing = self.client.get(f"{prefix}sales/"), self.client.get(f"{prefix}nowhere/")
            assert hidden.status_code == missing.status_code == 404
            assert hidden.content == missing.content

    def test_a_forbidden_board_costs_the_same_queries_as_a_missing_one(self):
        # A second query for the forbidden board only would tell the two apart by timing.
        self.client.force_login(self.p.other_supervisor)
        for prefix in ("/boards/", "/api/boards/"):
            counts = []
            for slug in ("sales", "nowhere"):
                with CaptureQueriesContext(connection) as queries:
                    assert self.client.get(f"{prefix}{slug}/").status_code == 404
                counts.append([query["sql"].split(" FROM ")[1].split(" ")[0] for query in queries])
            assert counts[0] == counts[1], counts

    def test_it_answers_404_for_an_unknown_board(self):
        self.client.force_login(self.p.supervisor)
        assert self.client.get("/boards/nowhere/").status_code == 404

    def test_it_lets_a_superuser_open_any_board(self):
        self.p.outsider.is_superuser = True
        self.p.outsider.save()
        self.client.force_login(self.p.outsider)
        assert self.client.get("/boards/billing/").status_code == 200

    # -- JSON -------------------------------------------------------------------------

    def test_it_returns_the_board_as_json(self):
        self.store_rows()
        self.client.force_login(self.p.supervisor)
        data = self.client.get("/api/boards/sales/").json()
        assert data["board"] == {"slug": "sales", "title": "Sales floor"}
        assert (data["epoch"], data["seq"]) == ("e1", 4)
        assert data["stale"] is False
        assert 0 <= data["age_seconds"] < 5
        assert data["health"]["state"] == "live"
        assert [q["name"] for q in data["queues"]] == ["Sales", "Support"]
        assert data["queues"][0]["waiting"] == 4
        assert data["queues"][0]["waiting_level"] == "warning"
        assert [a["name"] for a in data["agents"]] == ["Ann <A>", "Bob"]
        assert data["agents"][0]["status"] == "idle"
        assert "html" not in data["queues"][0]

    def test_it_marks_old_data_stale_in_json(self):
        self.store_rows(live_at=time.time() - 60)
        self.client.force_login(self.p.supervisor)
        data = self.client.get("/api/boards/sales/").json()
        assert data["stale"] is True
        assert data["age_seconds"] >= 59

    def test_it_filters_json_like_the_page(self):
        self.store_rows()
        self.client.force_login(self.p.supervisor)
        data = self.client.get(f"/api/boards/sales/?queue={self.p.sales.pk}").json()
        assert [q["name"] for q in data["queues"]] == ["Sales"]
        assert [a["name"] for a in data["agents"]] == ["Ann <A>"]

    def test_it_answers_api_clients_with_json_errors_not_redirects(self):
        response = self.client.get("/api/boards/sales/")
        assert (response.status_code, response["Content-Type"]) == (401, "application/json")
        self.client.force_login(self.p.other_supervisor)
        response = self.client.get("/api/boards/sales/")
        assert response.status_code == 404
        assert "error" in response.json()
        self.client.force_login(self.p.supervisor)
        assert self.client.get("/api/boards/nowhere/").status_code == 404

    def test_it_returns_an_empty_stale_board_before_the_worker_has_written(self):
        self.client.force_login(self.p.supervisor)
        data = self.client.get("/api/boards/sales/").json()
        assert (data["epoch"], data["seq"], data["live_at"], data["stale"]) == (None, 0, None, True)
        assert data["queues"] == [] and data["agents"] == []
