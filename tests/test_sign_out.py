"""The site's own sign-in and sign-out: after signing out, the old session cookie opens nothing."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client

from dashboard_project.asgi import application
from tests.personas import PASSWORD, Personas
from tests.timing import scaled

pytestmark = [pytest.mark.django_db(transaction=True)]


@pytest.fixture
def p(p) -> Personas:
    # A staff supervisor: the admin's logout used to be the only sign-out, and it behaves differently for staff.
    p.supervisor.is_staff = True
    p.supervisor.save()
    return p


def sign_in(username: str) -> tuple[Client, str]:
    """Sign in through the site's login page; return the client and its session cookie."""
    client = Client()
    response = client.post("/login/", {"username": username, "password": PASSWORD, "next": "/boards/sales/"})
    assert (response.status_code, response["Location"]) == (302, "/boards/sales/")
    return client, client.cookies["sessionid"].value


def with_cookie(session: str) -> Client:
    client = Client()
    client.cookies["sessionid"] = session
    return client


async def socket_opens(session: str) -> bool:
    """Return whether a board socket opened with SESSION gets the board's snapshot (rather than a refusal)."""
    headers = [
        (b"host", b"testserver"),
        (b"origin", b"http://testserver"),
        (b"cookie", f"sessionid={session}".encode()),
    ]
    ws = WebsocketCommunicator(application, "/ws/boards/sales/", headers=headers)
    connected, _ = await ws.connect(timeout=scaled(3))
    if not connected:
        return False
    first = await ws.receive_output(timeout=scaled(3))
    await ws.disconnect()
    return first["type"] == "websocket.send"


@pytest.mark.parametrize("staff", [True, False], ids=["staff", "not-staff"])
async def test_after_sign_out_the_old_cookie_opens_nothing(p, staff):
    username = p.supervisor.username if staff else "sue2"
    if not staff:
        # A supervisor who is not staff, of the same team.
        await sync_to_async(_add_plain_supervisor)(p)
    client, session = await sync_to_async(sign_in)(username)
    old = with_cookie(session)
    # Before: the cookie opens the page, the JSON and the socket (so the checks below can fail).
    assert (await sync_to_async(old.get)("/boards/sales/")).status_code == 200
    assert (await sync_to_async(old.get)("/api/boards/sales/")).status_code == 200
    assert await socket_opens(session)

    # The page's own sign-out button.
    page = (await sync_to_async(client.get)("/boards/sales/")).content.decode()
    assert 'action="/logout/"' in page
    response = await sync_to_async(client.post)("/logout/")
    assert (response.status_code, response["Location"]) == (302, "/login/")

    response = await sync_to_async(old.get)("/boards/sales/")
    assert (response.status_code, response["Location"]) == (302, "/login/?next=/boards/sales/")
    assert (await sync_to_async(old.get)("/api/boards/sales/")).status_code == 401
    assert (await sync_to_async(old.get)("/admin/")).status_code == 302
    assert not await socket_opens(session)


def _add_plain_supervisor(p: Personas) -> None:
    from django.contrib.auth.models import User

    user = User.objects.create_user("sue2", password=PASSWORD)
    user.groups.set(p.supervisor.groups.all())


def test_sign_out_takes_a_post_with_the_csrf_token(p):
    client = Client(enforce_csrf_checks=True)
    client.force_login(p.supervisor)
    # A link or an image on another site cannot sign anyone out...
    assert client.get("/logout/").status_code == 405
    # ...nor can a form without the token.
    assert client.post("/logout/").status_code == 403
    assert client.get("/boards/sales/").status_code == 200
    page = client.get("/boards/sales/").content.decode()
    token = client.cookies["csrftoken"].value
    assert 'name="csrfmiddlewaretoken"' in page
    assert client.post("/logout/", {"csrfmiddlewaretoken": token}).status_code == 302
    assert client.get("/boards/sales/").status_code == 302


def test_the_login_page_is_the_sites_own_not_the_admins(p):
    page = Client().get("/login/?next=/boards/sales/")
    html = page.content.decode()
    assert page.status_code == 200
    assert "dashboard/board.css" in html and "dashboard/auth.css" in html
    assert "admin/css" not in html
    assert 'name="next" value="/boards/sales/"' in html


def test_the_admin_keeps_its_own_login_for_staff_only(p):
    client = Client()
    response = client.post("/admin/login/?next=/admin/", {"username": "otto", "password": PASSWORD, "next": "/admin/"})
    # Not staff: the admin's form refuses, and nobody is signed in.
    assert response.status_code == 200
    assert client.get("/boards/billing/").status_code == 302
    response = client.post("/admin/login/?next=/admin/", {"username": "sue", "password": PASSWORD, "next": "/admin/"})
    assert (response.status_code, response["Location"]) == (302, "/admin/")
