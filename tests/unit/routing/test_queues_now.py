"""The queues routing reports to the metrics (relais_queue_*): per language and overflow stage, read per queue."""

from relais.common import metrics
from relais.routing import rules
from relais.routing.service import queues_now


def test_routing_queues_are_the_languages_own_until_a_step_names_a_queue():
    routing_rules = rules.load_rules(env={})  # the shipped steps: relax levels at 60 s, then queue "any" at 180 s
    rows = [
        {"language": "fr", "stage": 0, "waiting": 2, "oldest": 30.0},
        {"language": "fr", "stage": 1, "waiting": 1, "oldest": 90.0},
        {"language": "fr", "stage": 2, "waiting": 4, "oldest": 400.0},
        {"language": "en", "stage": 0, "waiting": 1, "oldest": None},
    ]
    assert queues_now(rows, routing_rules) == [
        metrics.QueueNow("en", "", 1, 0.0),
        metrics.QueueNow("fr", "", 3, 90.0),
        metrics.QueueNow("fr", "any", 4, 400.0),
    ]
