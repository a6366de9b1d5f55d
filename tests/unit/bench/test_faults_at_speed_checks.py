"""The fault tests' reply check fails on a missing, doubled, altered or out-of-order reply; the at-speed stream's
send order keeps each conversation's turns in order."""

import json

import pytest

from relais.common import cloudevents
from tests.integration.test_faults import Stream, check_replies
from tests.integration.test_faults_at_speed import conversations_for, serialise


def replies_for(stream: Stream) -> dict[str, list[dict]]:
    """What a correct pipeline sends: per conversation, one reply per expected type, answering its turns in order."""
    received: dict[str, list[dict]] = {}
    for cid, (_, expected) in stream.conversations.items():
        turns = iter(stream.turn_ids[cid])
        received[cid] = []
        for n, kind in enumerate(expected):
            data = {"text": "…"} if kind == cloudevents.REPLY_QUEUE else {"in_reply_to": next(turns)}
            received[cid].append({"id": f"{cid}/reply/{n}", "type": kind, "subject": cid, "data": data})
    return received


@pytest.fixture
def stream() -> Stream:
    stream = Stream("unit", 6)
    serialise(stream, second_turn_after=2)
    return stream


def two_turns(stream: Stream) -> str:
    return next(cid for cid, (texts, _) in stream.conversations.items() if len(texts) == 2)


def test_correct_replies_pass_and_identical_copies_are_counted(stream):
    received = replies_for(stream)
    assert check_replies(stream, received) == 0
    cid = two_turns(stream)
    received[cid].insert(1, json.loads(json.dumps(received[cid][0])))
    assert check_replies(stream, received) == 1


def test_a_missing_reply_fails(stream):
    received = replies_for(stream)
    received[two_turns(stream)].pop(0)
    with pytest.raises(AssertionError):
        check_replies(stream, received)


def test_a_second_reply_to_the_same_turn_fails(stream):
    received = replies_for(stream)
    cid = next(iter(stream.conversations))
    received[cid].append(received[cid][0] | {"id": "another"})
    with pytest.raises(AssertionError):
        check_replies(stream, received)


def test_a_copy_that_differs_fails(stream):
    received = replies_for(stream)
    cid = next(iter(stream.conversations))
    received[cid].append(received[cid][0] | {"data": {"in_reply_to": stream.turn_ids[cid][0], "text": "other"}})
    with pytest.raises(AssertionError, match="two different replies"):
        check_replies(stream, received)


def test_replies_out_of_the_turns_order_fail(stream):
    received = replies_for(stream)
    cid = two_turns(stream)
    first, second = received[cid][0], received[cid][1]
    # Same types in the same places, but each answering the other turn.
    first["data"]["in_reply_to"], second["data"]["in_reply_to"] = (
        second["data"]["in_reply_to"],
        first["data"]["in_reply_to"],
    )
    with pytest.raises(AssertionError):
        check_replies(stream, received)


def test_send_order_is_the_order_of_each_conversations_turn_ids():
    stream = Stream("unit", conversations_for(400))
    events = serialise(stream, second_turn_after=50)
    assert len(events) == stream.events == 400
    positions: dict[str, list[int]] = {}
    for index, (key, value, _) in enumerate(events):
        event = json.loads(value)
        assert event["subject"] == key.decode()
        positions.setdefault(key.decode(), []).append(index)
        assert f"{event['source']}#{event['id']}" == stream.turn_ids[key.decode()][len(positions[key.decode()]) - 1]
    for cid, (texts, _) in stream.conversations.items():
        assert len(positions[cid]) == len(texts)
