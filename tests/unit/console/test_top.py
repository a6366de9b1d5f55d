"""`relais top`'s screen and JSON, from a snapshot (no stack)."""

import json

from relais import top
from relais.cli import main
from relais.common.pb import live_pb2 as pb


def snapshot() -> pb.LiveSnapshot:
    s = pb.LiveSnapshot(
        agents_by_state={"busy": 2, "available": 1, "offline": 4},
        agents_by_language={"fr": 3, "en": 1},
        bot_answers_15m=42,
        handoffs_15m=7,
        service_level_30m=0.75,
        service_level_target_seconds=20,
    )
    s.at.FromSeconds(1_800_000_000)
    s.queues.add(
        language="fr",
        waiting=3,
        oldest_wait_seconds=95.4,
        expected_wait_seconds=240,
        offered_15m=5,
        accepted_15m=2,
        abandoned_15m=1,
        service_level_30m=0.5,
        agents_signed_in=3,
    )
    s.queues.add(language="fr", queue="billing", waiting=1, oldest_wait_seconds=200, agents_signed_in=3)
    s.queues.add(language="de", waiting=1, oldest_wait_seconds=12)  # nobody speaks it: no estimate
    return s


def test_json_has_the_public_keys_with_null_for_what_is_unknown():
    view = top.as_json(snapshot())
    assert list(view["agents"]) == ["available", "busy", "wrap_up", "break", "offline"]
    assert view["agents"]["busy"] == 2 and view["service_level_30m"] == 0.75
    fr, billing, de = view["queues"]
    assert (fr["language"], fr["queue"], fr["waiting"], fr["oldest_wait_seconds"], fr["expected_wait_seconds"]) == (
        "fr",
        "",
        3,
        95.4,
        240.0,
    )
    assert billing["queue"] == "billing" and billing["service_level_30m"] is None
    assert de["expected_wait_seconds"] is None
    json.dumps(view)


def test_the_screen_shows_each_queue_the_agents_and_the_service_level():
    screen = top.render(top.as_json(snapshot()))
    lines = screen.splitlines()
    fr = next(line for line in lines if line.startswith("fr "))
    assert fr.split() == ["fr", "3", "1m35s", "4m00s", "5", "2", "1", "50%", "3"]
    assert next(line for line in lines if line.startswith("fr / billing")).split()[3:5] == ["1", "3m20s"]
    assert next(line for line in lines if line.startswith("de ")).split()[3] == "-"  # no estimate
    assert "available 1  busy 2  wrap_up 0  break 0  offline 4" in screen
    assert "service level, last 30 min: 75% answered within 20s" in screen


def test_durations_read_as_a_person_would():
    assert [top.duration(s) for s in (None, 0, 59.6, 61, 3600 + 120)] == ["-", "0s", "1m00s", "1m01s", "1h02m"]


def test_top_without_a_stack_is_one_line_not_a_traceback(tmp_path, capsys):
    endpoints = tmp_path / "endpoints.env"
    endpoints.write_text("ROUTING_GRPC_ADDR=127.0.0.1:1\nRELAIS_SERVICE_TOKEN=t\n")
    assert main(["top", "--json", "--endpoints", str(endpoints)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("relais top: ") and "UNAVAILABLE" in err and "\n" not in err
