"""Two real ``runstreams`` workers against one Redis: one streams, the other takes over when it is killed.

Checked where it matters, at the simulator: at no sample are two notification
sockets open for the connection, and after a SIGKILL the survivor has the
stream back within 15 s. A SIGTERM then closes the socket and frees the lease.
"""

from __future__ import annotations

import signal
import threading
import time

import pytest

from tests.processes import Fleet, wait_until
from tests.timing import scaled

pytestmark = pytest.mark.redis


class SocketSampler(threading.Thread):
    """Count the connection's open sockets at the simulator every few milliseconds, keeping the highest."""

    def __init__(self, fleet: Fleet) -> None:
        super().__init__(daemon=True)
        self.fleet = fleet
        self.highest = 0
        self.samples = 0
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                self.highest = max(self.highest, self.fleet.sockets_open())
                self.samples += 1
            except OSError:
                pass
            self.stopping.wait(0.02)


def test_a_killed_workers_stream_moves_to_another_without_ever_doubling(tmp_path):
    fleet = Fleet(tmp_path)
    sampler = SocketSampler(fleet)
    try:
        fleet.start_simulator("--heartbeat", "2")
        ids = fleet.seed()
        workers = {fleet.start(name, "runstreams").pid: name for name in ("worker-a", "worker-b")}
        sampler.start()

        wait_until(lambda: fleet.sockets_open() == 1, scaled(30), "one worker streaming")
        holder = fleet.holder_pid()
        assert holder in workers
        epoch_key = f"{fleet.prefix}:board:{ids['board']}:meta"
        wait_until(lambda: fleet.redis.hget(epoch_key, "epoch"), scaled(10), "the board published")
        first_epoch = fleet.redis.hget(epoch_key, "epoch")

        fleet.processes[workers[holder]].send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        survivor = next(pid for pid in workers if pid != holder)
        wait_until(
            lambda: fleet.holder_pid() == survivor and fleet.sockets_open() == 1, scaled(20), "the survivor streaming"
        )
        takeover = time.monotonic() - killed_at
        assert takeover < 15.0 * max(1.0, scaled(1)), f"took {takeover:.1f} s"
        # The survivor publishes the board under its own epoch, so viewers resync.
        wait_until(lambda: fleet.redis.hget(epoch_key, "epoch") != first_epoch, scaled(10), "a new epoch")

        survivor_process = fleet.processes[workers[survivor]]
        survivor_process.send_signal(signal.SIGTERM)
        assert survivor_process.wait(timeout=scaled(20)) == 0, fleet.log(workers[survivor])
        wait_until(lambda: fleet.sockets_open() == 0, scaled(10), "the socket closed on SIGTERM")
        assert fleet.holder_pid() is None  # released at once, not left to lapse
        sampler.stopping.set()
        sampler.join()
        assert sampler.samples > 50
        assert sampler.highest == 1, "two sockets served the same connection at once"
        for name in ("worker-a", "worker-b"):
            assert "Traceback" not in fleet.log(name), fleet.log(name)[-4000:]
    finally:
        sampler.stopping.set()
        fleet.stop_all()
