"""The simulator's contact-centre model, driven step by step with explicit times."""

import uuid

import pytest

from simulator.model import (
    IDLE,
    INTERACTING,
    NOT_RESPONDING,
    OFF_QUEUE,
    AgentChange,
    ContactCentreModel,
    MembershipChange,
    ModelConfig,
    QueueChange,
)
from simulator.timefmt import interval_start, iso, ms, parse_iso

# 2026-11-22T08:00:10Z: ten seconds into an interval, so a test has 30 minutes before the next one.
T0 = 1795248010.0


def quiet(**overrides) -> ModelConfig:
    """Return a config where nothing happens unless a test makes it happen."""
    settings = {
        "queues": 3,
        "agents": 6,
        "rate": 0.0,
        "presence_change_mean": 0.0,
        "not_responding_probability": 0.0,
        "on_queue_share": 1.0,
        "alert_range": (3.0, 3.0),
        "acw_range": (5.0, 5.0),
        "patience_mean": 1e9,
    }
    return ModelConfig(**(settings | overrides))


def make(**overrides) -> ContactCentreModel:
    return ContactCentreModel(quiet(**overrides), start=T0)


def step_until(model: ContactCentreModel, condition, start: float, limit: float = 600.0, step: float = 0.1) -> float:
    """Step the model in small increments until CONDITION holds; return the time it did."""
    t = start
    while t < start + limit:
        t = round(t + step, 3)
        model.step(t)
        if condition():
            return t
    raise AssertionError("the condition never held")


def first_queue(model):
    return next(iter(model.queues.values()))


def sole_member_queue(model):
    """Return a queue and its members, taking all but one member off queue."""
    queue = first_queue(model)
    members = sorted(queue.member_ids)
    for user_id in members[1:]:
        model.set_presence(user_id, "BREAK", now=T0)
    return queue, members[0]


def test_it_builds_queues_and_agents_with_uuid_ids_and_human_names():
    model = ContactCentreModel(ModelConfig(queues=4, agents=20), start=T0)

    assert [q.name for q in model.queues.values()] == ["Sales", "Support", "Billing", "Retention"]
    for ident in list(model.queues) + list(model.agents):
        assert str(uuid.UUID(ident)) == ident
    names = [a.name for a in model.agents.values()]
    assert len(set(names)) == 20 and all(" " in name for name in names)
    assert all(1 <= len(a.queue_ids) <= 3 for a in model.agents.values())
    assert all(q.member_ids for q in model.queues.values())


def test_it_gives_the_same_ids_and_history_for_the_same_seed_whatever_the_tick():
    fine = ContactCentreModel(ModelConfig(seed=7, rate=1.0), start=T0)
    coarse = ContactCentreModel(ModelConfig(seed=7, rate=1.0), start=T0)
    other = ContactCentreModel(ModelConfig(seed=8, rate=1.0), start=T0)

    for i in range(1, 3001):
        fine.step(T0 + i * 0.1)
    for i in range(1, 31):
        coarse.step(T0 + i * 10.0)

    assert fine.truth() == coarse.truth()
    assert sum(q["offered"] for q in fine.truth()["queues"].values()) > 200  # about 1/s for 300 s
    assert set(other.queues).isdisjoint(fine.queues)


def test_it_offers_an_arriving_contact_to_the_longest_idle_member():
    model = make()
    queue = first_queue(model)
    longest_idle = min((model.agents[a] for a in queue.member_ids), key=lambda a: a.routing_since)

    contact = model.arrive(queue.id, now=T0 + 1)

    assert contact.state == "alerting" and contact.agent_id == longest_idle.id
    assert longest_idle.routing_status == INTERACTING and longest_idle.routing_since == T0 + 1
    truth = model.queue_truth(queue.id)
    assert (truth["waiting"], truth["alerting"], truth["interacting"], truth["offered"]) == (0, 1, 0, 1)


def test_it_connects_then_wraps_up_then_makes_the_agent_idle_again():
    model = make()
    queue = first_queue(model)
    contact = model.arrive(queue.id, now=T0 + 1)
    agent = model.agents[contact.agent_id]

    model.step(T0 + 4)  # the alert lasts exactly 3 s here
    assert contact.state == "interacting" and contact.connected_at == T0 + 4
    truth = model.queue_truth(queue.id)
    assert (truth["alerting"], truth["interacting"], truth["answered"]) == (0, 1, 1)
    assert (truth["sl_numerator"], truth["sl_denominator"]) == (1, 1)

    hung_up = step_until(model, lambda: contact.state == "acw", T0 + 4)
    assert model.queue_truth(queue.id)["interacting"] == 0  # wrap-up is not interacting
    assert agent.routing_status == INTERACTING

    idle_at = step_until(model, lambda: agent.routing_status == IDLE, hung_up)
    assert idle_at == pytest.approx(hung_up + 5.0, abs=0.11)
    assert agent.phase is None and contact.id not in model.contacts


def test_it_counts_an_answer_after_the_threshold_outside_service_level():
    model = make()
    queue, member = sole_member_queue(model)
    model.set_presence(member, "BREAK", now=T0)
    contact = model.arrive(queue.id, now=T0 + 1)
    assert contact.state == "waiting"

    model.set_presence(member, "ON_QUEUE", now=T0 + 30)  # waited 29 s before the offer
    model.step(T0 + 33)

    truth = model.queue_truth(queue.id)
    assert contact.state == "interacting"
    assert (truth["answered"], truth["sl_numerator"], truth["sl_denominator"]) == (1, 0, 1)


def test_it_abandons_a_waiting_contact_when_patience_runs_out():
    model = make(patience_mean=30.0)
    queue, member = sole_member_queue(model)
    model.set_presence(member, "MEAL", now=T0)
    contact = model.arrive(queue.id, now=T0 + 1)
    assert model.queue_truth(queue.id)["longest_waiting_since"] == T0 + 1

    model.step(contact.abandon_at)

    truth = model.queue_truth(queue.id)
    assert contact.state == "ended" and contact.abandoned
    assert (truth["waiting"], truth["abandoned"], truth["sl_denominator"]) == (0, 1, 1)
    assert truth["longest_waiting_since"] is None


def test_it_serves_the_oldest_waiting_contact_first():
    model = make()
    queue, member = sole_member_queue(model)
    model.set_presence(member, "AWAY", now=T0)
    first = model.arrive(queue.id, now=T0 + 1)
    second = model.arrive(queue.id, now=T0 + 2)

    model.set_presence(member, "OnQueue", now=T0 + 3)

    assert (first.state, second.state) == ("alerting", "waiting")
    assert model.queue_truth(queue.id)["longest_waiting_since"] == T0 + 2


def test_it_takes_an_agent_off_queue_when_presence_leaves_on_queue():
    model = make()
    queue = first_queue(model)
    user_id = sorted(queue.member_ids)[0]
    before = model.queue_truth(queue.id)

    model.set_presence(user_id, "break", now=T0 + 1)

    agent = model.agents[user_id]
    assert (agent.presence, agent.presence_since) == ("break", T0 + 1)
    assert (agent.routing_status, agent.routing_since) == (OFF_QUEUE, T0 + 1)
    after = model.queue_truth(queue.id)
    assert after["on_queue_agents"] == before["on_queue_agents"] - 1
    assert after["idle_agents"] == before["idle_agents"] - 1

    model.set_presence(user_id, "ON_QUEUE", now=T0 + 2)
    assert (agent.routing_status, agent.routing_since) == (IDLE, T0 + 2)


def test_it_keeps_a_busy_agent_interacting_until_wrap_up_ends_after_a_break_is_chosen():
    model = make()
    queue = first_queue(model)
    contact = model.arrive(queue.id, now=T0 + 1)
    agent = model.agents[contact.agent_id]
    model.step(T0 + 4)

    model.set_presence(agent.id, "BREAK", now=T0 + 5)
    assert agent.presence == "break" and agent.routing_status == INTERACTING

    step_until(model, lambda: agent.phase is None, T0 + 5)
    assert agent.routing_status == OFF_QUEUE


def test_it_puts_a_contact_back_in_queue_when_the_agent_does_not_respond():
    model = make(not_responding_probability=1.0, alert_timeout=8.0, not_responding_range=(10.0, 10.0))
    queue, member = sole_member_queue(model)
    contact = model.arrive(queue.id, now=T0 + 1)

    model.step(T0 + 9)

    agent = model.agents[member]
    assert contact.state == "waiting" and contact.start == T0 + 1
    assert (agent.routing_status, agent.routing_since) == (NOT_RESPONDING, T0 + 9)
    model.step(T0 + 19)
    assert contact.state == "alerting" and contact.agent_id == member


def test_it_changes_presence_on_its_own_over_time():
    model = make(presence_change_mean=60.0)
    before = {a.id: a.presence for a in model.agents.values()}

    for i in range(1, 601):
        model.step(T0 + i)

    assert any(a.presence != before[a.id] for a in model.agents.values())
    assert all(
        (a.routing_status == OFF_QUEUE) == (a.presence != "on_queue") for a in model.agents.values() if a.phase is None
    )


def test_it_starts_fresh_interval_numbers_at_the_half_hour():
    model = make()
    queue = first_queue(model)
    model.arrive(queue.id, now=T0 + 1)
    model.step(T0 + 4)
    assert model.queue_truth(queue.id)["answered"] == 1

    boundary = interval_start(T0) + 1800
    model.step(boundary + 0.5)

    truth = model.queue_truth(queue.id)
    assert truth["interval_start"] == boundary
    assert (truth["offered"], truth["answered"], truth["sl_denominator"]) == (0, 0, 0)


def test_it_changes_nothing_while_paused_and_does_not_catch_up_on_resume():
    model = make(rate=1.0)
    model.step(T0 + 60)
    model.pause(now=T0 + 60)
    frozen = model.truth()

    model.step(T0 + 600)
    assert model.truth() == frozen and frozen["paused"]

    model.resume(now=T0 + 600)
    offered_before = sum(q["offered"] for q in frozen["queues"].values())
    model.step(T0 + 601)
    offered_after = sum(model.queue_truth(q)["offered"] for q in model.queues)
    assert offered_after - offered_before <= 5  # one second's arrivals, not nine minutes'


def test_it_reports_each_change_to_its_listeners():
    model = make()
    queue = first_queue(model)
    user_id = sorted(queue.member_ids)[0]
    other_queue = next(q for q in model.queues if q not in model.agents[user_id].queue_ids)
    seen = []
    model.listeners.append(seen.extend)

    model.set_presence(user_id, "BREAK", now=T0 + 1)
    model.set_membership(user_id, other_queue, True, now=T0 + 2)

    assert AgentChange(user_id, presence=True, routing=False) in seen
    assert AgentChange(user_id, presence=False, routing=True) in seen
    assert QueueChange(queue.id, observations=True, interval=False) in seen
    assert MembershipChange(other_queue, user_id, True) in seen
    assert other_queue in model.agent_truth(user_id)["queue_ids"]


def test_it_keeps_every_time_at_millisecond_precision_that_survives_iso():
    model = ContactCentreModel(ModelConfig(rate=3.0), start=T0 + 0.0004)
    for i in range(1, 200):
        model.step(T0 + i * 0.37)

    times = [a["routing_since"] for a in model.truth()["agents"].values()]
    times += [c.start for c in model.contacts.values()]
    assert times
    for t in times:
        assert t == ms(t)
        assert parse_iso(iso(t)) == t


def test_it_brings_contacts_at_the_configured_rate_and_can_change_it():
    model = make(queues=4, agents=40, rate=0.5)
    for i in range(1, 1001):
        model.step(T0 + i)
    offered = sum(q.offered for q in model.queues.values())
    assert 420 <= offered <= 580  # Poisson, mean 500

    model.set_rate(0.0, now=T0 + 1001)
    for i in range(1002, 1101):
        model.step(T0 + i)
    assert sum(q.offered for q in model.queues.values()) == offered


def test_it_frees_the_agent_when_a_ringing_contact_abandons():
    model = make(patience_mean=2.0, alert_range=(30.0, 30.0))
    queue = first_queue(model)
    contact = model.arrive(queue.id, now=T0 + 1)
    agent = model.agents[contact.agent_id]

    model.step(contact.abandon_at)

    assert contact.abandoned and agent.routing_status == IDLE and agent.phase is None
    assert model.queue_truth(queue.id)["alerting"] == 0
