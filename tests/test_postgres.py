"""The schema and the worker's configuration queries on the real PostgreSQL server."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from tests.timing import scaled

pytestmark = pytest.mark.postgres

ROOT = Path(__file__).resolve().parent.parent
ADMIN_URL = os.environ.get("POSTGRES_TEST_URL", "postgresql://postgres@127.0.0.1:5432/postgres")

SCRIPT = """
from django.contrib.auth.models import Group
from django.db import IntegrityError, transaction
from dashboard.models import Board
from streams.models import Connection, Queue
from dashboard.work_plan import load_config

conn = Connection.of(name="G", base_url="http://127.0.0.1:9", client_id="cid", client_secret="s3cret")
conn.save()
Connection.of("webhook", name="W", slug="crm", webhook_secret="k").save()
assert Connection.objects.get(settings__slug="crm").secret("webhook_secret") == "k"
try:
    with transaction.atomic():
        Connection.of("webhook", name="W2", slug="crm", webhook_secret="k").save()
    raise SystemExit("duplicate webhook slug accepted")
except IntegrityError:
    pass
q = Queue.objects.create(connection=conn, vendor_id="q-1", name="Sales")
try:
    with transaction.atomic():
        Queue.objects.create(connection=conn, vendor_id="q-1", name="Dup")
    raise SystemExit("duplicate vendor id accepted")
except IntegrityError:
    pass
board = Board.objects.create(slug="b", title="B")
board.queues.add(q)
board.groups.add(Group.objects.create(name="Team"))
config = load_config()
spec = config.specs[conn.source_key]
assert spec.queue_ids == ("q-1",), spec.queue_ids
assert spec.settings.client_secret == "s3cret"
assert "s3cret" not in str(Connection.objects.values_list("encrypted_secrets", flat=True).get(pk=conn.pk))
assert [p.slug for p in config.boards] == ["b"]
print("ok")
"""


@pytest.fixture
def database():
    name = f"floorview_test_{secrets.token_hex(4)}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _manage(database_url, *args):
    env = {**os.environ, "DATABASE_URL": database_url, "DJANGO_SETTINGS_MODULE": "dashboard_project.settings"}
    env.pop("REDIS_URL", None)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=scaled(120),
    )


def test_migrations_and_worker_queries_run_on_postgresql(database):
    migrate = _manage(database, "migrate", "--noinput")
    assert migrate.returncode == 0, migrate.stderr
    pending = _manage(database, "makemigrations", "--check", "--dry-run")
    assert pending.returncode == 0, "models changed without a migration:\n" + pending.stdout
    run = _manage(database, "shell", "-c", SCRIPT)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip().endswith("ok")
