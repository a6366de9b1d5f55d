"""The demo advisor signs in so that routing prefers any real agent who holds the skill."""

from relais.demo import DEMO_ADVISOR, DEMO_ADVISOR_LEVELS
from relais.routing import rules

RULES = rules.RoutingRules()
README_AGENT = {"billing": 3, "orders": 2, "conflict_handling": 1}  # docs/routing.md, "Try it as an agent"


def agent(agent_id: str, levels: dict[str, int], idle_since: float) -> rules.Agent:
    return rules.Agent(agent_id, frozenset({"fr", "en"}), levels, {"chat": 3}, {}, idle_since)


def task(required: dict[str, int], preferred: tuple[str, ...] = ()) -> rules.Task:
    return rules.Task("t1", "fr", "chat", required, 0, 0.0, preferred)


def best_id(need: rules.Task, agents: list[rules.Agent]) -> str | None:
    """rules.best_agent's choice by id; None: nobody."""
    chosen = rules.best_agent(need, agents, RULES)
    return chosen.agent_id if chosen is not None else None


def test_a_real_agent_with_the_skill_is_preferred_to_the_demo_advisor_even_idle_for_less_long():
    demo = agent(DEMO_ADVISOR, DEMO_ADVISOR_LEVELS, idle_since=0.0)  # idle the longest
    alice = agent("alice", README_AGENT, idle_since=100.0)
    bob = agent("bob", {"general": 1, "orders": 1}, idle_since=50.0)  # the same level: the longest idle
    assert set(DEMO_ADVISOR_LEVELS.values()) == {1}
    for required, preferred in (({"orders": 1}, ("conflict_handling",)), ({"billing": 1}, ()), ({"billing": 2}, ())):
        assert best_id(task(required, preferred), [demo, alice]) == "alice"
    assert best_id(task({"general": 1}), [alice, bob, agent(DEMO_ADVISOR, DEMO_ADVISOR_LEVELS, 60.0)]) == "bob"
    # What no real agent can take still goes to the demo advisor, so `make demo` alone answers everything.
    assert best_id(task({"general": 1}), [demo, alice]) == DEMO_ADVISOR
