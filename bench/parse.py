"""Parse+apply throughput: Genesys socket frames → events → Floor → publisher marks, on one core.

The frames are the JSON text the simulator's notification socket would send a
connector watching every queue: the simulator's own contact-centre model and
its own ``TopicPublisher`` (with its once-a-second throttle of queue
observation topics) run in simulated time, and a recording hub keeps every
frame. The mix is what the connector subscribes to: queue observations
(instant contact and agent figures, interval aggregates), ``v2.users.{id}.activity``
and queue membership.

The timed loop is the worker's per-frame path minus the connector's
bookkeeping: ``parse_frame``, the media-type totals the connector keeps
(``MediaTotals``), ``Floor.apply`` and ``Publisher.mark``.
"""

from __future__ import annotations

import asyncio
import cProfile
import io
import pstats
import random
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

from channels.layers import InMemoryChannelLayer

from dashboard.publisher import BoardPlan, Publisher
from dashboard.rows import QueueConfig
from simulator.genesys.sockets import envelope
from simulator.genesys.topic_publisher import TopicPublisher
from simulator.model import ContactCentreModel, ModelConfig
from streams.events import AgentStatus, SourceSnapshot
from streams.floor import Floor
from streams.snapshots import MemorySnapshotStore
from streams.vendors.genesys.media import MediaTotals
from streams.vendors.genesys.parsers import decode_frame, parse_frame
from streams.vendors.genesys.queue_metrics import QueuePart
from streams.vendors.genesys.subscriptions import agent_topic, queue_topics
from streams.vendors.genesys.values import _interval, _iso_time

SOURCE = "c1"
# A fixed start keeps the frames (ids, times, sizes) the same from run to run.
START = 1_780_000_000.0
TICK = 0.1  # the simulator server's tick
WARM_UP = 600.0  # simulated seconds before recording: queues and agents mid-shift, not freshly opened
# Cumulative stages of the per-frame path; "mark" is the headline figure.
STAGES = (
    ("json", "decode_frame only"),
    ("parse", "parse_frame"),
    ("apply", "+ media totals + apply"),
    ("mark", "+ Publisher.mark"),
)


class RecordingHub:
    """Stand in for the simulator's hub: one socket subscribed to TOPICS, whose frames are kept."""

    def __init__(self, topics: set[str]) -> None:
        self.topics = topics
        self.frames: list[str] = []
        self.kinds: Counter[str] = Counter()

    def wants(self, topic: str) -> bool:
        """Return whether the connector subscribes to TOPIC."""
        return topic in self.topics

    def combined_topics(self, user_id: str) -> dict[str, frozenset[str]]:
        """Return no combined user topics (the connector uses ``activity``)."""
        return {}

    def publish(self, topic: str, body: dict[str, Any], *, also: str | None = None) -> int:
        """Record BODY on TOPIC as the socket would send it."""
        if topic not in self.topics:
            return 0
        self.frames.append(envelope(topic, body))
        self.kinds[_kind(topic, body)] += 1
        return 1


def _kind(topic: str, body: dict[str, Any]) -> str:
    if topic.endswith(".observations"):
        start, _, end = body["data"][0]["interval"].partition("/")
        if start != end:
            return "queue aggregates"
        return "queue contacts" if "mediaType" in body["group"] else "queue agents"
    return "membership" if topic.endswith(".users") else "user activity"


class SimulatedTimeLoop(asyncio.SelectorEventLoop):
    """An event loop whose clock is the simulation's, so the simulator's throttle timers fire in simulated time.

    Whoever drives the simulation never blocks, so the loop never sleeps: a
    timer runs on the first turn after the simulated clock has passed it.
    """

    def __init__(self, clock: list[float]) -> None:
        super().__init__()
        self._clock = clock

    def time(self) -> float:
        """Return the simulated time."""
        return self._clock[0]


@dataclass
class FrameSet:
    """Frames to replay, and the picture the connector would hold before the first one."""

    frames: list[str]
    kinds: Counter[str]
    snapshot: SourceSnapshot
    plan: BoardPlan
    simulated_seconds: float


def _snapshot(model: ContactCentreModel) -> SourceSnapshot:
    """Return the agents the connector's REST resync would give the Floor for MODEL as it is now."""
    agents = {
        agent.id: AgentStatus(
            source=SOURCE,
            agent_id=agent.id,
            name=agent.name,
            presence=agent.presence,
            presence_since=agent.presence_since,
            routing_status=agent.routing_status,
            routing_since=agent.routing_since,
            queue_ids=frozenset(agent.queue_ids),
        )
        for agent in model.agents.values()
    }
    return SourceSnapshot(source=SOURCE, agents=agents)


async def _record(model: ContactCentreModel, hub: RecordingHub, clock: list[float], seconds: float, seed: int) -> None:
    """Run MODEL for SECONDS of simulated time with the simulator's topic publisher feeding HUB."""
    publisher = TopicPublisher(model, hub, clock=lambda: clock[0])
    publisher.start()
    rng = random.Random(seed)
    queue_ids, agent_ids = list(model.queues), list(model.agents)
    end = clock[0] + seconds
    while clock[0] < end:
        clock[0] = round(clock[0] + TICK, 3)
        model.step(clock[0])
        if rng.random() < 0.2 * TICK:
            # About one join or leave every five seconds, so membership frames are in the mix.
            agent = model.agents[rng.choice(agent_ids)]
            queue_id = rng.choice(queue_ids)
            # Leave only if that keeps the agent on some queue, so every agent stays on the board.
            joined = queue_id not in agent.queue_ids or len(agent.queue_ids) == 1
            model.set_membership(agent.id, queue_id, joined, clock[0])
        await asyncio.sleep(0)  # one loop turn: trailing observation sends now due go out
    publisher.stop()


def build_frames(
    *, queues: int = 50, agents: int = 1000, rate: float = 3.0, seconds: float = 300.0, seed: int = 7
) -> FrameSet:
    """Run the simulator for SECONDS of simulated time and return the frames a connector would receive.

    RATE contacts per second with a three-minute mean handle time keep about
    85% of the on-queue agents busy, with a few contacts waiting and some
    abandoning: a busy floor that copes.
    """
    clock = [START]
    config = ModelConfig(queues=queues, agents=agents, rate=rate, seed=seed, handle_mean=180.0)
    model = ContactCentreModel(config, start=START, clock=lambda: clock[0])
    clock[0] = START + WARM_UP
    model.step(clock[0])
    snapshot = _snapshot(model)
    topics = {topic for queue_id in model.queues for topic in queue_topics(queue_id)}
    topics |= {agent_topic(agent_id) for agent_id in model.agents}
    hub = RecordingHub(topics)
    loop = SimulatedTimeLoop(clock)
    try:
        loop.run_until_complete(_record(model, hub, clock, seconds, seed))
    finally:
        loop.close()
    configs = {
        (SOURCE, queue.id): QueueConfig(pk=n, vendor_id=queue.id, name=queue.name)
        for n, queue in enumerate(model.queues.values(), start=1)
    }
    plan = BoardPlan(board_id=1, slug="bench", window=0.25, queues=configs)
    return FrameSet(hub.frames, hub.kinds, snapshot, plan, seconds)


def _fresh(frame_set: FrameSet) -> tuple[Floor, MediaTotals, Publisher]:
    floor = Floor()
    floor.replace(frame_set.snapshot)
    publisher = Publisher(floor, layer=InMemoryChannelLayer(), store=MemorySnapshotStore())
    publisher.set_boards([frame_set.plan])
    return floor, MediaTotals(), publisher


async def _replay(frames: list[str], floor: Floor, media: MediaTotals, publisher: Publisher, stage: str) -> float:
    """Time one STAGE of the worker's per-frame path over FRAMES; return the seconds.

    It runs inside an event loop, as in the worker, so ``mark`` books its flush
    timer as it would there; nothing awaits, so no flush runs inside the timing.
    """
    apply, mark, add = floor.apply, publisher.mark, media.add
    started = time.perf_counter()
    if stage == "json":
        for frame in frames:
            decode_frame(frame)
    elif stage == "parse":
        for frame in frames:
            parse_frame(SOURCE, frame)
    else:
        marking = stage == "mark"
        for frame in frames:
            for item in parse_frame(SOURCE, frame).events:
                # What the connector's prepare() does: a queue's media part becomes the queue's totals.
                changed = apply(add(item) if isinstance(item, QueuePart) else item)
                if changed and marking:
                    mark(changed)
    return time.perf_counter() - started


def time_stage(frame_set: FrameSet, stage: str) -> float:
    """Replay every frame once through STAGE, into a fresh Floor and publisher; return the seconds."""
    floor, media, publisher = _fresh(frame_set)
    # Each replay reads its times as the first did: a cache warm from the previous replay of the same
    # frames would find times a live stream has not sent before.
    _iso_time.cache_clear()
    _interval.cache_clear()
    return asyncio.run(_replay(frame_set.frames, floor, media, publisher, stage))


def profile(frame_set: FrameSet, top: int = 20) -> str:
    """Return cProfile's table (by own time) for one replay of the whole path."""
    floor, media, publisher = _fresh(frame_set)
    profiler = cProfile.Profile()
    profiler.enable()
    asyncio.run(_replay(frame_set.frames, floor, media, publisher, "mark"))
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(top)
    return out.getvalue()


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2]


def run(*, repeats: int = 7, show_profile: bool = False) -> dict:
    """Build the frames, time every stage REPEATS times, print the figures and return the headline ones."""
    print("== Parse+apply throughput (one core) ==")
    started = time.perf_counter()
    frame_set = build_frames()
    built = time.perf_counter() - started
    count = len(frame_set.frames)
    size = sum(len(f) for f in frame_set.frames)
    print(
        f"frames: {count} from {frame_set.simulated_seconds:.0f} simulated seconds "
        f"({len(frame_set.plan.queues)} queues, {len(frame_set.snapshot.agents)} agents; built in {built:.1f} s)"
    )
    mix = ", ".join(f"{kind} {n} ({n / count:.0%})" for kind, n in frame_set.kinds.most_common())
    print(f"mix: {mix}; mean frame {size / count:,.0f} bytes")
    # A frame the parser refused would be cheap and flatter the figure: say how each one was read.
    notices = Counter(parse_frame(SOURCE, frame).kind for frame in frame_set.frames)
    print("parsed as: " + ", ".join(f"{kind} {n}" for kind, n in notices.most_common()))
    # Stages take turns, so a slow spell of a shared machine does not land on one stage only.
    times: dict[str, list[float]] = {stage: [] for stage, _ in STAGES}
    for _ in range(repeats):
        for stage, _label in STAGES:
            times[stage].append(time_stage(frame_set, stage))
    for stage, label in STAGES:
        best, median = min(times[stage]), _median(times[stage])
        print(
            f"  {label:<24} best {count / best:>8,.0f} frames/s ({best / count * 1e6:5.1f} µs/frame),"
            f" median {count / median:>8,.0f}/s"
        )
    best = min(times["mark"])
    rate = count / best
    print(
        f"parse+apply+mark: {count} frames in {best:.3f} s (best of {repeats}) = {rate:,.0f} frames/s;"
        f" target >= 100,000/s: {'met' if rate >= 100_000 else 'NOT met'}"
    )
    if show_profile:
        print(profile(frame_set))
    return {"frames": count, "seconds": best, "rate": rate}
