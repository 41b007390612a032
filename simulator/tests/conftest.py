"""Fixtures of the simulator's own tests: a quiet SimulatorServer on 127.0.0.1 and an aiohttp client."""

import aiohttp
import pytest

from simulator.server import SimulatorServer

QUIET = {"rate": 0.0, "presence_change_mean": 0.0, "not_responding_probability": 0.0, "on_queue_share": 1.0}


@pytest.fixture
async def http():
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def make_sim():
    """Start simulators (quiet unless told otherwise) and stop them all afterwards."""
    started = []

    async def make(**options) -> SimulatorServer:
        sim = SimulatorServer(client_secret="s3cret", **(QUIET | options))
        await sim.start()
        started.append(sim)
        return sim

    yield make
    for sim in started:
        await sim.stop()


@pytest.fixture
async def sim(make_sim):
    return await make_sim()
