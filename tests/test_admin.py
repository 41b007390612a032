"""The admin: a write-only client secret, queue import from the (simulated) vendor, and board editing."""

from __future__ import annotations

import asyncio
import threading
from unittest import mock

from django.conf import settings
from django.contrib.auth.models import Group, User
from django.contrib.messages import get_messages
from django.test import TestCase, override_settings

from dashboard.models import Board
from simulator.server import SimulatorServer
from streams.models import Connection, Queue
from tests.personas import CLIENT_SECRET, FAST_HASHERS, make_personas
from tests.timing import scaled


class SimulatorInThread:
    """The Genesys simulator on its own event loop, so the admin's synchronous views can call it."""

    def __init__(self, **options) -> None:
        self.options = options
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="simulator", daemon=True)

    def _call(self, coroutine):
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=scaled(10))

    def __enter__(self) -> SimulatorInThread:
        self.thread.start()

        async def start():
            self.sim = SimulatorServer(port=0, **self.options)
            return await self.sim.start()

        self.base_url = self._call(start())
        return self

    def __exit__(self, *exc) -> None:
        self._call(self.sim.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=scaled(5))
        self.loop.close()


def connection_form(connection: Connection, **changes) -> dict:
    settings = connection.settings
    data = {
        "name": connection.name,
        "kind": connection.kind,
        "region": settings.get("region", ""),
        "base_url": settings.get("base_url", ""),
        "client_id": settings.get("client_id", ""),
        "client_secret": "",
        "enabled": "on",
        # What the admin's form shows for the other kinds' fields, left as they are.
        "api_version": "v31.0",
        "poll_interval": "5.0",
        "max_frame_bytes": str(1024 * 1024),
        "keepalive_seconds": "15.0",
        "field_mapping": "{}",
        "queues-TOTAL_FORMS": "0",
        "queues-INITIAL_FORMS": "0",
        "queues-MIN_NUM_FORMS": "0",
        "queues-MAX_NUM_FORMS": "1000",
    }
    return data | changes


@override_settings(PASSWORD_HASHERS=FAST_HASHERS)
class ConnectionKindsAdminTests(TestCase):
    """Each kind asks for what it needs, keeps its secrets write-only and refuses an unusable mapping."""

    @classmethod
    def setUpTestData(cls):
        cls.admin = User.objects.create_superuser("root", "root@example.com", "pw")

    def setUp(self):
        self.client.force_login(self.admin)

    def add(self, **fields):
        data = connection_form(Connection(name="New feed"), region="", base_url="", client_id="") | fields
        return self.client.post("/admin/streams/connection/add/", data)

    def errors(self, response) -> str:
        assert response.status_code == 200
        return response.content.decode()

    def test_cxone_needs_an_access_key_and_stores_its_secret_encrypted(self):
        html = self.errors(self.add(kind="cxone", client_id="app", client_secret="app-secret"))
        assert "CXone signs in with an access key" in html
        key = {"kind": "cxone", "client_id": "app", "client_secret": "app-secret", "access_key_id": "AK=1"}
        assert "API version such as v31.0" in self.errors(self.add(**key, access_key_secret="s", api_version="latest"))
        response = self.add(**key, access_key_secret="s=cr=t", api_version="31")
        assert response.status_code == 302
        connection = Connection.objects.get(name="New feed")
        assert connection.settings["api_version"] == "v31.0"  # as CXone's paths spell it
        assert connection.secret("access_key_secret") == "s=cr=t"
        encrypted = connection.encrypted_secrets["access_key_secret"]
        assert "s=cr=t" not in encrypted
        page = self.client.get(f"/admin/streams/connection/{connection.pk}/change/").content.decode()
        assert "s=cr=t" not in page and encrypted not in page

    def test_a_push_feed_needs_a_websocket_address(self):
        assert "Give the feed" in self.errors(self.add(kind="push"))
        assert "needs a ws or wss address" in self.errors(self.add(kind="push", stream_url="https://feed.example/x"))
        assert self.add(kind="push", stream_url="wss://feed.example/x").status_code == 302

    def test_a_feed_with_a_token_endpoint_needs_the_client_secret(self):
        html = self.errors(
            self.add(kind="sse", stream_url="https://feed.example/s", token_url="https://feed.example/token")
        )
        assert "cannot sign in without it" in html

    def test_a_webhook_needs_a_slug_and_a_secret(self):
        assert "Give the slug" in self.errors(self.add(kind="webhook", webhook_secret="k"))
        assert "cannot sign in without it" in self.errors(self.add(kind="webhook", slug="crm"))
        assert self.add(kind="webhook", slug="crm", webhook_secret="k3y").status_code == 302
        assert Connection.objects.get(settings__slug="crm").secret("webhook_secret") == "k3y"

    def test_the_form_shows_the_fields_of_its_kind_only(self):
        page = self.client.get("/admin/streams/connection/add/?kind=webhook").content.decode()
        assert 'name="slug"' in page and 'name="webhook_secret"' in page and 'name="field_mapping"' in page
        assert 'name="region"' not in page and 'name="access_key_id"' not in page and 'name="stream_url"' not in page
        page = self.client.get("/admin/streams/connection/add/").content.decode()  # the default kind: Genesys
        assert 'name="region"' in page and 'name="client_secret"' in page and 'name="slug"' not in page
        # A kind chosen on the form shows its own fields when the form comes back.
        page = self.errors(self.add(kind="cxone"))
        assert 'name="access_key_id"' in page and 'name="poll_interval"' in page and 'name="region"' not in page

    def test_every_registered_kind_gets_its_form_from_its_settings_class(self):
        from streams.vendors.registry import VENDORS

        for kind, entry in VENDORS.items():
            page = self.client.get(f"/admin/streams/connection/add/?kind={kind}").content.decode()
            assert all(f'name="{name}"' in page for name in entry.settings.names()), kind
            others = {n for e in VENDORS.values() for n in e.settings.names()} - set(entry.settings.names())
            assert not any(f'name="{name}"' in page for name in others), kind

    def test_an_unusable_field_mapping_is_refused_with_the_reason(self):
        html = self.errors(
            self.add(kind="webhook", slug="crm", webhook_secret="k", field_mapping='{"queue": "payload.queue"}')
        )
        assert "unknown field" in html
        assert not Connection.objects.filter(settings__slug="crm").exists()


@override_settings(PASSWORD_HASHERS=FAST_HASHERS)
class ConnectionAdminTests(TestCase):
    """Connections: the secret is write-only, and queues can be imported from the vendor."""

    @classmethod
    def setUpTestData(cls):
        cls.p = make_personas()
        cls.admin = User.objects.create_superuser("root", "root@example.com", "pw")

    def setUp(self):
        self.client.force_login(self.admin)
        self.url = f"/admin/streams/connection/{self.p.connection.pk}/change/"

    def test_it_never_renders_the_stored_secret(self):
        html = self.client.get(self.url).content.decode()
        assert 'name="client_secret"' in html
        assert CLIENT_SECRET not in html
        assert self.p.connection.encrypted_secrets["client_secret"] not in html
        assert "encrypted_secrets" not in html

    def test_it_keeps_the_secret_when_the_field_is_left_blank(self):
        before = self.p.connection.encrypted_secrets["client_secret"]
        response = self.client.post(self.url, connection_form(self.p.connection, name="Renamed"))
        assert response.status_code == 302
        connection = Connection.objects.get(pk=self.p.connection.pk)
        assert connection.name == "Renamed"
        assert connection.encrypted_secrets["client_secret"] == before
        assert connection.secret("client_secret") == CLIENT_SECRET

    def test_it_stores_a_new_secret_encrypted(self):
        response = self.client.post(self.url, connection_form(self.p.connection, client_secret="brand-new-secret"))
        assert response.status_code == 302
        stored = Connection.objects.values_list("encrypted_secrets", flat=True).get(pk=self.p.connection.pk)
        assert "brand-new-secret" not in str(stored)
        assert Connection.objects.get(pk=self.p.connection.pk).secret("client_secret") == "brand-new-secret"

    def test_it_does_not_echo_a_typed_secret_when_the_form_has_errors(self):
        data = connection_form(self.p.connection, client_secret="typed-secret-xyz", base_url="", region="")
        response = self.client.post(self.url, data)
        assert response.status_code == 200
        assert "Give either a region or a base URL." in response.content.decode()
        assert "typed-secret-xyz" not in response.content.decode()

    def test_it_requires_a_secret_for_a_new_connection(self):
        blank = Connection.of(name="New", base_url="http://127.0.0.1:9", client_id="c")
        data = connection_form(blank)
        response = self.client.post("/admin/streams/connection/add/", data)
        assert response.status_code == 200
        assert not Connection.objects.filter(name="New").exists()
        response = self.client.post("/admin/streams/connection/add/", data | {"client_secret": "first-secret"})
        assert response.status_code == 302
        assert Connection.objects.get(name="New").secret("client_secret") == "first-secret"

    def test_it_lists_connections_with_status_and_queue_count(self):
        self.p.connection.record_status("live")
        html = self.client.get("/admin/streams/connection/").content.decode()
        assert "http://127.0.0.1:9" in html
        assert "Live" in html and "since" in html
        assert '<td class="field-queue_count">3</td>' in html
        assert CLIENT_SECRET not in html

    def test_it_imports_queues_from_the_vendor(self):
        with SimulatorInThread(queues=3, agents=2) as sim:
            connection = Connection.of(
                name="Simulated",
                base_url=sim.base_url,
                client_id=sim.sim.client_id,
                client_secret=sim.sim.client_secret,
            )
            connection.save()
            Queue.objects.create(connection=connection, vendor_id=next(iter(sim.sim.model.queues)), name="Old name")
            vendor_names = {qid: queue.name for qid, queue in sim.sim.model.queues.items()}
            response = self.client.post(
                "/admin/streams/connection/",
                {"action": "import_queues", "_selected_action": [connection.pk]},
                follow=True,
            )
        assert response.status_code == 200
        imported = dict(connection.queues.values_list("vendor_id", "name"))
        assert imported == vendor_names
        [message] = [str(m) for m in get_messages(response.wsgi_request)]
        assert message == "Simulated: 3 queues at the vendor; 2 added, 1 renamed."

    def test_it_imports_a_cxone_connections_skills_as_queues(self):
        with SimulatorInThread(queues=3, agents=2) as sim:
            connection = Connection.of(
                "cxone",
                name="CXone",
                base_url=sim.base_url,
                client_id=sim.sim.client_id,
                access_key_id=sim.sim.cxone_access_key_id,
                client_secret=sim.sim.client_secret,
                access_key_secret=sim.sim.cxone_access_key_secret,
            )
            connection.save()
            skills = {str(queue.number): queue.name for queue in sim.sim.model.queues.values()}
            response = self.client.post(
                "/admin/streams/connection/",
                {"action": "import_queues", "_selected_action": [connection.pk]},
                follow=True,
            )
        assert dict(connection.queues.values_list("vendor_id", "name")) == skills
        [message] = [str(m) for m in get_messages(response.wsgi_request)]
        assert message == "CXone: 3 queues at the vendor; 3 added, 0 renamed."

    def test_it_says_a_feed_has_no_queue_list_instead_of_calling_anything(self):
        connection = Connection.of("push", name="Push", stream_url="ws://127.0.0.1:9/feed")
        connection.save()
        response = self.client.post(
            "/admin/streams/connection/",
            {"action": "import_queues", "_selected_action": [connection.pk]},
            follow=True,
        )
        [message] = list(get_messages(response.wsgi_request))
        assert message.level_tag == "warning"
        assert "add its queues by the ids its records use" in str(message)

    def test_it_reports_a_failed_import_without_the_secret(self):
        with SimulatorInThread(queues=1, agents=1) as sim:
            connection = Connection.of(
                name="Wrong secret",
                base_url=sim.base_url,
                client_id=sim.sim.client_id,
                client_secret="not-the-secret-123",
            )
            connection.save()
            response = self.client.post(
                "/admin/streams/connection/",
                {"action": "import_queues", "_selected_action": [connection.pk]},
                follow=True,
            )
        [message] = list(get_messages(response.wsgi_request))
        assert message.level_tag == "error"
        assert str(message).startswith("Wrong secret: the import failed")
        assert "not-the-secret-123" not in response.content.decode()
        assert not connection.queues.exists()

    def test_it_blanks_the_secret_out_of_error_texts(self):
        # An error text quoting the secret (a proxy echoing a request, say) must not reach the page.
        from streams.vendors.genesys import queues

        async def leaky(spec):
            raise RuntimeError(f"upstream refused client {spec.settings.client_id} with {spec.settings.client_secret}")

        with mock.patch.object(queues, "fetch_queues", leaky):
            response = self.client.post(
                "/admin/streams/connection/",
                {"action": "import_queues", "_selected_action": [self.p.connection.pk]},
                follow=True,
            )
        text = str(next(iter(get_messages(response.wsgi_request))))
        assert CLIENT_SECRET not in text
        assert "with •••" in text


@override_settings(PASSWORD_HASHERS=FAST_HASHERS)
class QueueAndBoardAdminTests(TestCase):
    """Queues and boards: lists, panels as checkboxes, and the way to the live board."""

    @classmethod
    def setUpTestData(cls):
        cls.p = make_personas()
        cls.admin = User.objects.create_superuser("root", "root@example.com", "pw")

    def setUp(self):
        self.client.force_login(self.admin)

    def test_it_lists_queues_with_their_targets_and_thresholds(self):
        html = self.client.get("/admin/streams/queue/").content.decode()
        assert "q-sales" in html
        assert "80% in 20 s" in html
        assert "3 / 10" in html  # Sales warns at 3 waiting.
        assert "60 s / 180 s" in html

    def test_it_saves_the_ticked_panels(self):
        board = self.p.board
        data = {
            "title": board.title,
            "slug": board.slug,
            "queues": [self.p.sales.pk],
            "panels": ["agents"],
            "coalesce_ms": "1000",
            "groups": list(board.groups.values_list("pk", flat=True)),
        }
        response = self.client.post(f"/admin/dashboard/board/{board.pk}/change/", data)
        assert response.status_code == 302
        board.refresh_from_db()
        assert (board.panels, board.coalesce_ms) == (["agents"], 1000)
        assert list(board.queues.all()) == [self.p.sales]
        html = self.client.get(f"/admin/dashboard/board/{board.pk}/change/").content.decode()
        assert 'type="checkbox" name="panels" value="agents"' in html
        assert 'value="agents" id="id_panels_1" checked' in html

    def test_it_creates_a_board_for_a_group(self):
        group = Group.objects.get(name="Billing supervisors")
        data = {"title": "Night shift", "slug": "night", "coalesce_ms": "250", "groups": [group.pk]}
        assert self.client.post("/admin/dashboard/board/add/", data).status_code == 302
        board = Board.objects.get(slug="night")
        assert (board.panels, board.shown_panels()) == ([], ["queues", "agents", "interactions"])
        assert board.may_view(self.p.other_supervisor)

    def test_a_new_board_starts_with_the_configured_coalescing_window(self):
        # FLOORVIEW_COALESCE_WINDOW is the default a new board (in the admin or in code) starts with.
        window = {**settings.FLOORVIEW, "COALESCE_WINDOW": 0.8}
        with override_settings(FLOORVIEW=window):
            html = self.client.get("/admin/dashboard/board/add/").content.decode()
            assert 'name="coalesce_ms" value="800"' in html
            assert Board.objects.create(slug="wall", title="Wall").coalesce_ms == 800
        assert Board.objects.create(slug="desk", title="Desk").coalesce_ms == 250

    def test_it_links_each_board_to_its_live_page(self):
        html = self.client.get("/admin/dashboard/board/").content.decode()
        assert '<a href="/boards/sales/">View board</a>' in html
        change = self.client.get(f"/admin/dashboard/board/{self.p.board.pk}/change/").content.decode()
        assert 'href="/boards/sales/" class="viewsitelink"' in change  # The admin's "View on site" button.
        assert "prepopulated" in change
