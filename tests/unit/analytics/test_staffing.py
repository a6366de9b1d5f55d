"""Erlang C staffing against published worked examples, plus the CLI contract."""

import argparse
import json
import time

import pytest

from relais.analytics.staffing import (
    add_parser,
    asa_seconds,
    erlang_c,
    required_agents,
    service_level,
    staffing_cli,
    staffing_curve,
)


def test_small_cases_derived_by_hand():
    # C(N, A) = (A^N/N! * N/(N-A)) / (sum_{k<N} A^k/k! + A^N/N! * N/(N-A))
    assert erlang_c(3, 2.0) == pytest.approx(4 / 9)  # (4/3*3) / (1 + 2 + 2 + 4) = 4/9
    assert erlang_c(2, 1.0) == pytest.approx(1 / 3)  # (1/2*2) / (1 + 1 + 1) = 1/3
    assert erlang_c(1, 0.25) == pytest.approx(0.25)  # M/M/1: a contact waits with probability rho


def test_overloaded_queue_always_waits():
    assert erlang_c(10, 10.0) == 1.0
    assert erlang_c(5, 12.5) == 1.0
    assert service_level(10, 10.0, 180, 20) == 0.0
    assert asa_seconds(10, 10.0, 180) == float("inf")


# Published example: 100 calls per 30 minutes, AHT 180 s, 80 % within 20 s, max occupancy 85 %.
# - pyworkforce README (ErlangC(transactions=100, aht=3, interval=30, asa=20/60).required_positions(
#   service_level=0.8, max_occupancy=0.85)): raw_positions 14, service_level 0.8883500191794669,
#   occupancy 0.7142857142857143, waiting_probability 0.1741319335950498.
# - CRAN package ErlangC README (erlang_c(100, 30 min, 180 s, 20 s, 14)): traffic 10, wait_probability
#   0.1741319, service_level 0.88835, average_speed_of_answer 7.83593701177724 s, occupancy 0.7142857;
#   its calculate_agents() search also starts at 11 agents with wait 0.6821182, service level 0.3896138.
def test_published_example_at_14_agents():
    assert erlang_c(14, 10.0) == pytest.approx(0.1741319335950498, abs=1e-12)
    assert service_level(14, 10.0, 180, 20) == pytest.approx(0.8883500191794669, abs=1e-12)
    assert asa_seconds(14, 10.0, 180) == pytest.approx(7.83593701177724, abs=1e-9)
    assert erlang_c(11, 10.0) == pytest.approx(0.6821182, abs=1e-7)
    assert service_level(11, 10.0, 180, 20) == pytest.approx(0.3896138, abs=1e-7)


def test_published_example_required_agents():
    staffing = required_agents(200, 180, 0.8, 20, max_occupancy=0.85)
    assert (staffing.agents, staffing.traffic_erlangs, staffing.calls_per_hour, staffing.aht_seconds) == (
        14,
        10.0,
        200,
        180,
    )
    assert (staffing.service_level, staffing.occupancy, staffing.asa_seconds) == pytest.approx(
        (0.8883500191794669, 0.7142857142857143, 7.835937)
    )
    assert required_agents(200, 180, 0.8, 20).agents == 14  # 13 agents only reach 79.6 %


def test_occupancy_cap_adds_agents():
    # 720 calls/h x 240 s = 48 Erlangs: 54 agents reach 80/20 at 88.9 % occupancy.
    assert required_agents(720, 240, 0.8, 20).agents == 54
    assert required_agents(720, 240, 0.8, 20, max_occupancy=0.85).agents == 57  # 48 / 57 = 84.2 %


def test_more_agents_answer_faster():
    curve = staffing_curve(720, 240, 20, range(40, 70))
    assert [point.agents for point in curve] == list(range(40, 70))
    loaded = [point for point in curve if point.agents > 48]
    assert all(a.service_level < b.service_level for a, b in zip(loaded, loaded[1:]))
    assert all(a.asa_seconds > b.asa_seconds for a, b in zip(loaded, loaded[1:]))
    assert all(a.occupancy > b.occupancy for a, b in zip(loaded, loaded[1:]))
    assert curve[0].service_level == 0.0 and curve[0].as_dict()["asa_seconds"] is None
    # A stricter target never needs fewer agents.
    assert required_agents(720, 240, 0.9, 20).agents >= required_agents(720, 240, 0.8, 20).agents


def test_chat_concurrency_counts_slots():
    single = required_agents(200, 180, 0.8, 20)
    three_chats = required_agents(200, 180, 0.8, 20, concurrency=3)
    # 5 agents x 3 slots = 15 slots, the first slot count reaching 80/20 for 10 Erlangs on a multiple of 3.
    assert three_chats.agents == 5
    assert three_chats.service_level == pytest.approx(service_level(15, 10.0, 180, 20))
    assert three_chats.agents < single.agents


def test_large_values_are_fast_and_sane():
    start = time.perf_counter()
    staffing = required_agents(20_000, 300, 0.8, 20)
    assert time.perf_counter() - start < 1.0
    traffic = 20_000 * 300 / 3600
    assert staffing.traffic_erlangs == pytest.approx(traffic)
    assert traffic < staffing.agents < traffic * 1.05  # big queues pool well: occupancy near 99 %
    assert 0.8 <= staffing.service_level < 0.81
    assert 0 < staffing.asa_seconds < 60
    assert 0 <= erlang_c(5000, 4500.0) < 1e-10  # no overflow from A^N / N!


@pytest.mark.parametrize(
    "kwargs, named",
    [
        ({"calls_per_hour": -5}, "calls per hour must be > 0, got -5"),
        ({"calls_per_hour": 0}, "calls per hour"),
        ({"aht_seconds": 0}, "aht seconds must be > 0"),
        ({"aht_seconds": -1}, "aht seconds"),
        ({"target_level": 0}, "target level must be in (0, 1]"),
        ({"target_level": 1.5}, "target level"),
        ({"target_seconds": -1}, "target seconds must be >= 0"),
        ({"concurrency": 0.5}, "concurrency must be >= 1"),
        ({"max_occupancy": 0}, "max occupancy"),
        ({"calls_per_hour": float("nan")}, "calls per hour"),
    ],
)
def test_impossible_inputs_are_named(kwargs, named):
    arguments = {"calls_per_hour": 720, "aht_seconds": 240, "target_level": 0.8, "target_seconds": 20} | kwargs
    with pytest.raises(ValueError, match=named.replace("(", r"\(").replace("]", r"\]")):
        required_agents(**arguments)


def run_cli(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="relais")
    add_parser(parser.add_subparsers(dest="command"))
    return staffing_cli(parser.parse_args(["staffing", *argv]))


BASE = ["--calls-per-hour", "720", "--aht-seconds", "240", "--target-level", "0.8", "--target-seconds", "20"]


def test_cli_json(capsys):
    assert run_cli(*BASE, "--json") == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result) == {"agents", "service_level", "occupancy", "asa_seconds"}
    assert result == {"agents": 54, "service_level": 0.8172, "occupancy": 0.8889, "asa_seconds": 12.05}


def test_cli_json_peak(capsys):
    assert run_cli(*BASE, "--peak-multiplier", "3", "--json") == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result) == {"agents", "service_level", "occupancy", "asa_seconds", "peak"}
    assert set(result["peak"]) == {"agents", "service_level", "occupancy", "asa_seconds"}
    assert result["peak"]["agents"] == required_agents(2160, 240, 0.8, 20).agents > result["agents"]
    assert result["peak"]["service_level"] >= 0.8


def test_cli_human_summary(capsys):
    assert run_cli(*BASE, "--peak-multiplier", "2") == 0
    out = capsys.readouterr().out
    assert "54 agents" in out and "peak x2" in out


@pytest.mark.parametrize(
    "flag, value",
    [
        ("--calls-per-hour", "-5"),
        ("--calls-per-hour", "0"),
        ("--aht-seconds", "0"),
        ("--target-level", "0"),
        ("--target-level", "1.2"),
        ("--target-seconds", "-3"),
        ("--peak-multiplier", "0"),
        ("--concurrency", "0"),
    ],
)
def test_cli_refuses_impossible_inputs(capsys, flag, value):
    argv = BASE + ["--json"]
    if flag in argv:
        argv[argv.index(flag) + 1] = value
    else:
        argv += [flag, value]
    assert run_cli(*argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith(f"relais staffing: error: {flag} must be ")
    assert "Traceback" not in captured.err


def test_cli_type_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as exit_info:
        run_cli("--calls-per-hour", "many", "--aht-seconds", "240")
    assert exit_info.value.code == 2
    assert "--calls-per-hour" in capsys.readouterr().err
