"""Migration 0004: each kind's columns move into ``settings`` and ``encrypted_secrets``, and back."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from streams import crypto

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("streams", "0003_connection_kinds")]
AFTER = [("streams", "0004_connection_settings")]


def migrate(targets):
    """Migrate the test database to TARGETS; return the models as they stand there."""
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.fixture
def old_apps():
    apps = migrate(BEFORE)
    yield apps
    # The other tests expect the newest schema.
    migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())


def test_existing_rows_carry_their_values_over_and_back(old_apps):
    Connection = old_apps.get_model("streams", "Connection")
    genesys = Connection.objects.create(
        name="Genesys EU",
        kind="genesys",
        region="eu-west-1",
        client_id="app",
        client_secret_encrypted=crypto.encrypt("app-secret"),
        backoff_cap=20.0,
        enabled=False,
    )
    cxone = Connection.objects.create(
        name="CXone",
        kind="cxone",
        base_url="https://cxone.example",
        client_id="cx-app",
        client_secret_encrypted=crypto.encrypt("cx-secret"),
        access_key_id="AK1",
        access_key_secret_encrypted=crypto.encrypt("ak-secret"),
        api_version="v30.0",
        poll_interval=7.5,
    )
    sse = Connection.objects.create(
        name="SSE",
        kind="sse",
        stream_url="https://feed.example/events",
        token_url="https://feed.example/token",
        client_id="feed",
        scope="feeds:read",
        field_mapping={"queue_id": "payload.queue.id"},
        max_frame_bytes=4096,
        keepalive_seconds=30.0,
    )
    hook = Connection.objects.create(
        name="CRM", kind="webhook", slug="crm", webhook_secret_encrypted=crypto.encrypt("hook-secret")
    )
    stored = Connection.objects.get(pk=cxone.pk).access_key_secret_encrypted

    migrate(AFTER)

    from streams.models import Connection as Current

    moved = Current.objects.get(pk=genesys.pk)
    assert (moved.name, moved.kind, moved.enabled, moved.backoff_cap) == ("Genesys EU", "genesys", False, 20.0)
    assert moved.settings == {"region": "eu-west-1", "base_url": "", "client_id": "app"}
    assert moved.secret("client_secret") == "app-secret"
    assert moved.kind_settings().login_base == "https://login.mypurecloud.ie"
    moved = Current.objects.get(pk=cxone.pk)
    assert moved.settings == {
        "base_url": "https://cxone.example",
        "client_id": "cx-app",
        "access_key_id": "AK1",
        "api_version": "v30.0",
        "poll_interval": 7.5,
    }
    # The ciphertext moves as it was: nothing is decrypted on the way.
    assert moved.encrypted_secrets["access_key_secret"] == stored
    assert (moved.secret("client_secret"), moved.secret("access_key_secret")) == ("cx-secret", "ak-secret")
    moved = Current.objects.get(pk=sse.pk)
    assert moved.kind_settings().mapping().paths["queue_id"] == ("payload", "queue", "id")
    assert (moved.settings["max_frame_bytes"], moved.settings["keepalive_seconds"]) == (4096, 30.0)
    assert moved.encrypted_secrets == {}  # no client secret was stored
    moved = Current.objects.get(pk=hook.pk)
    assert Current.objects.get(settings__slug="crm").pk == hook.pk
    assert moved.secret("webhook_secret") == "hook-secret"

    apps = migrate(BEFORE)
    Connection = apps.get_model("streams", "Connection")
    back = Connection.objects.get(pk=cxone.pk)
    assert (back.base_url, back.access_key_id, back.api_version, back.poll_interval) == (
        "https://cxone.example",
        "AK1",
        "v30.0",
        7.5,
    )
    assert back.access_key_secret_encrypted == stored
    back = Connection.objects.get(pk=hook.pk)
    assert back.slug == "crm" and crypto.decrypt(back.webhook_secret_encrypted) == "hook-secret"
    back = Connection.objects.get(pk=sse.pk)
    assert back.field_mapping == {"queue_id": "payload.queue.id"} and back.keepalive_seconds == 30.0
