"""The people and boards the dashboard tests share: two teams, their boards, and an outsider."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.models import Group, User

from dashboard.models import Board
from dashboard.rows import QueueConfig
from streams.models import Connection, Queue

PASSWORD = "correct horse battery staple"
# Real hashing costs about half a second per user; tests prove permissions, not password storage.
FAST_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
CLIENT_SECRET = "s3cret-value-never-shown"


@dataclass
class Personas:
    """A supervisor of the sales board, a supervisor of the billing board, an outsider and their boards."""

    connection: Connection
    sales: Queue
    support: Queue
    billing: Queue
    board: Board
    other_board: Board
    supervisor: User
    other_supervisor: User
    outsider: User

    def config(self, queue: Queue) -> QueueConfig:
        """Return a queue's row config, as the worker would build it."""
        return QueueConfig.from_queue(queue)

    @property
    def source(self) -> str:
        """Return the Floor source key of the connection."""
        return self.connection.source_key


def make_personas() -> Personas:
    """Create the personas in the database and return them."""
    connection = Connection.of(
        name="Genesys test", base_url="http://127.0.0.1:9", client_id="floorview-client", client_secret=CLIENT_SECRET
    )
    connection.save()
    sales = Queue.objects.create(connection=connection, vendor_id="q-sales", name="Sales", waiting_warning=3)
    support = Queue.objects.create(connection=connection, vendor_id="q-support", name="Support")
    billing = Queue.objects.create(connection=connection, vendor_id="q-billing", name="Billing")
    sales_team = Group.objects.create(name="Sales supervisors")
    billing_team = Group.objects.create(name="Billing supervisors")
    board = Board.objects.create(slug="sales", title="Sales floor")
    board.queues.set([sales, support])
    board.groups.add(sales_team)
    other_board = Board.objects.create(slug="billing", title="Billing floor")
    other_board.queues.set([billing])
    other_board.groups.add(billing_team)
    supervisor = User.objects.create_user("sue", password=PASSWORD)
    supervisor.groups.add(sales_team)
    other_supervisor = User.objects.create_user("otto", password=PASSWORD)
    other_supervisor.groups.add(billing_team)
    outsider = User.objects.create_user("olive", password=PASSWORD)
    return Personas(
        connection=connection,
        sales=sales,
        support=support,
        billing=billing,
        board=board,
        other_board=other_board,
        supervisor=supervisor,
        other_supervisor=other_supervisor,
        outsider=outsider,
    )
