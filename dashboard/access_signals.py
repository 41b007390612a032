"""Announce access changes to every web process (see dashboard.access), from whichever process made them.

Changes come from the admin in a web process, from ``manage.py shell`` or a
script: anywhere Django's signals fire. The announcement goes out after the
transaction commits (otherwise the re-check would read the old rows) and
never fails the change itself: with the channel layer away it is logged and
the periodic re-check enforces the change later.
"""

from __future__ import annotations

import asyncio
import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.contrib.auth import get_user_model, user_logged_out
from django.contrib.auth.models import Group
from django.db import transaction
from django.db.models.signals import m2m_changed, post_delete, post_save
from django.dispatch import receiver

from dashboard.access import session_tag
from dashboard.models import Board
from dashboard.protocol import ACCESS_CHANGED, ACCESS_GROUP

log = logging.getLogger(__name__)

User = get_user_model()
ANNOUNCE_TIMEOUT = 3.0  # seconds


def announce(*, boards=(), users=(), sessions=(), everyone: bool = False) -> None:
    """Tell every web process, once the current transaction commits, to re-check the viewers concerned."""
    message = {
        "type": ACCESS_CHANGED,
        "boards": sorted(boards),
        "users": sorted(users),
        "sessions": sorted(sessions),
        "everyone": everyone,
    }
    transaction.on_commit(lambda: _send(message), robust=True)


def _send(message: dict) -> None:
    try:
        layer = get_channel_layer()
        if layer is None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if loop is None:
            async_to_sync(_group_send)(layer, message)
        else:
            # Called from async code in this thread: async_to_sync cannot run here.
            task = loop.create_task(_group_send(layer, message))
            task.add_done_callback(_log_failure)
    except Exception as error:
        log.warning("could not announce an access change (%s); the periodic re-check will enforce it", error)


async def _group_send(layer, message: dict) -> None:
    # Bounded: an admin's save must not hang on a Redis that does not answer.
    await asyncio.wait_for(layer.group_send(ACCESS_GROUP, message), ANNOUNCE_TIMEOUT)


def _log_failure(task: asyncio.Task) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("could not announce an access change (%s); the periodic re-check will enforce it", task.exception())


REMOVALS = ("post_remove", "post_clear")


@receiver(m2m_changed, sender=Board.groups.through, dispatch_uid="floorview-access-board-groups")
def board_groups_changed(sender, instance, action, reverse, pk_set, **kwargs) -> None:
    """A board lost groups (or a group lost boards): re-check those boards' viewers."""
    if action not in REMOVALS:
        return  # Adding grants access; nothing to close.
    if not reverse:
        announce(boards=[instance.pk])
    elif pk_set:
        announce(boards=pk_set)
    else:
        announce(everyone=True)  # group.boards.clear(): which boards is no longer known.


@receiver(m2m_changed, sender=User.groups.through, dispatch_uid="floorview-access-user-groups")
def user_groups_changed(sender, instance, action, reverse, pk_set, **kwargs) -> None:
    """A user left groups (or a group lost members): re-check those users' viewers."""
    if action not in REMOVALS:
        return
    if not reverse:
        announce(users=[instance.pk])
    elif pk_set:
        announce(users=pk_set)
    else:
        announce(everyone=True)


@receiver(post_save, sender=User, dispatch_uid="floorview-access-user-saved")
def user_saved(sender, instance, created, update_fields=None, **kwargs) -> None:
    """A user changed (deactivated, lost superuser, new password): re-check their viewers."""
    if created or (update_fields is not None and set(update_fields) <= {"last_login"}):
        return  # A sign-in saves last_login only; nothing was taken away.
    announce(users=[instance.pk])


@receiver(post_delete, sender=User, dispatch_uid="floorview-access-user-deleted")
def user_deleted(sender, instance, **kwargs) -> None:
    """A user is gone: close their sockets."""
    announce(users=[instance.pk])


@receiver(post_delete, sender=Board, dispatch_uid="floorview-access-board-deleted")
def board_deleted(sender, instance, **kwargs) -> None:
    """A board is gone: close its sockets."""
    announce(boards=[instance.pk])


@receiver(post_delete, sender=Group, dispatch_uid="floorview-access-group-deleted")
def group_deleted(sender, instance, **kwargs) -> None:
    """A group is gone, and with it memberships that sent no signal of their own: re-check everyone."""
    announce(everyone=True)


@receiver(user_logged_out, dispatch_uid="floorview-access-signed-out")
def signed_out(sender, request, user, **kwargs) -> None:
    """A session ends: close the sockets it opened."""
    session = getattr(request, "session", None)
    key = getattr(session, "session_key", None)
    if key:
        announce(sessions=[session_tag(key)])
