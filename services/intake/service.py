"""intake: the front door. Validates and normalises each contact event, detects the language
when the sender did not give it, stores the turn, and passes it to the classifier. A survey
answer (relais.contact.survey.v1) of a known conversation goes to analytics as an outcome, its
comment redacted.

Language: the customer's declared one wins; else the detected one (relais.common.language, which tells
French and English from Spanish, German, Italian, Portuguese and Dutch). A later message stays in the
conversation's language unless it clearly says otherwise ("ok", "ja", "CMD-123456" do not); a first
message that could be a served or an unserved language is marked language_unsure, and the bot answers
it in French and English.

Personal data (card numbers, IBANs, e-mail addresses, phone numbers) is redacted here, before the
turn is stored, published, logged or traced: nothing downstream ever sees it. Order numbers and the
like are kept for the bot's lookups. Intake also runs the retention purge (relais.common.retention).

One trace per conversation: the first turn's span is the conversation's root; every later
turn's span is its child, so a whole conversation reads as one trace.
"""

from dataclasses import dataclass
from datetime import timezone

from aiokafka import ConsumerRecord
from google.protobuf.timestamp_pb2 import Timestamp

from relais.common import bus, cloudevents, customer_contact, retention, telemetry, topics, worker
from relais.common.language import guess_languages, turn_languages, warm_up
from relais.common.pb import conversation_pb2 as pb
from relais.common.redact import redact
from relais.common.runtime import serve
from relais.common.unit_of_work import Item, UnitOfWork


@dataclass
class Inbound:
    """A contact event as read, before anything is stored: for a message, what is known without the database."""

    event: cloudevents.ContactEvent
    text: str = ""  # redacted: everything kept or sent
    phone: str = ""  # the number to call back never travels in a turn


async def build(w: worker.Worker) -> worker.Service:
    warm_up()

    def decode(record: ConsumerRecord) -> Inbound:
        event = cloudevents.parse_contact_event(record.value, record.headers, w.settings.max_text_chars)
        if event.survey is not None:
            return Inbound(event)
        message = event.message
        assert message is not None  # a contact event carries a survey or a message
        return Inbound(event, redact(message.text), customer_contact.take_phone(message))

    async def handle_batch(items: list[Item], unit: UnitOfWork) -> None:
        new = await unit.first_time([i.value.event.event_key for i in items], [i.record for i in items])
        messages: dict[str, list[Item]] = {}  # by conversation, each in order
        for item in items:
            key = item.value.event.event_key
            if key not in new:
                continue
            new.discard(key)  # the same event twice in one poll: applied once
            if item.value.event.survey is not None:
                await survey_answer(item, unit)
            else:
                messages.setdefault(item.value.event.subject, []).append(item)
        if messages:
            await store_turns(messages, unit)

    async def store_turns(messages: dict[str, list[Item]], unit: UnitOfWork) -> None:
        """The known conversations' turn counts in one statement, the new ones in a second, then every turn (with
        the trace of the conversations that start here) in one more."""
        rows = await unit.db.fetch(
            "UPDATE conversations SET turn_count = conversations.turn_count + t.turns, updated_at = now()"
            " FROM unnest($1::text[], $2::int[]) AS t(conversation_id, turns)"
            " WHERE conversations.conversation_id = t.conversation_id"
            " RETURNING conversations.conversation_id, turn_count, traceparent, language",
            list(messages),
            [len(batch) for batch in messages.values()],
        )
        starting = [c for c in messages.keys() - {r["conversation_id"] for r in rows}]
        # A new conversation's language is its first message's (told or detected, once: later ones are read
        # knowing it), detected on the text as written (in memory only).
        firsts = [messages[c][0].value.event.message for c in starting]
        guesses = dict(zip(starting, guess_languages([(m.text, m.customer.language, None) for m in firsts])))
        if starting:
            rows += await unit.db.fetch(
                "INSERT INTO conversations (conversation_id, customer_id, channel, language, tier, turn_count)"
                " SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::int[])"
                " ON CONFLICT (conversation_id) DO UPDATE"  # another process's, during a rebalance
                " SET turn_count = conversations.turn_count + EXCLUDED.turn_count, updated_at = now()"
                " RETURNING conversation_id, turn_count, traceparent, language",
                starting,
                [m.customer.id for m in firsts],
                [cloudevents.CHANNEL_NAMES[m.channel] for m in firsts],
                [guesses[c].language for c in starting],
                [m.customer.tier for m in firsts],
                [len(messages[c]) for c in starting],
            )
        # Every turn in order with its number, and its conversation's guess when it is the first.
        numbered = []
        for row in rows:
            batch = messages[row["conversation_id"]]
            for seq, item in enumerate(batch, row["turn_count"] - len(batch) + 1):
                numbered.append((row, item, seq, guesses.get(row["conversation_id"]) if seq == 1 else None))
        # Later turns are read knowing the conversation's language (set by its first turn), all in one call.
        later = iter(
            turn_languages(
                [
                    (item.value.event.message.text, item.value.event.message.customer.language, row["language"])
                    for row, item, _, first in numbered
                    if first is None
                ]
            )
        )
        received = Timestamp()
        received.GetCurrentTime()
        turns: list[pb.Turn] = []
        roots: dict[str, str] = {}  # conversations starting here -> their trace
        traces = {row["conversation_id"]: row["traceparent"] for row in rows}
        for row, item, seq, first in numbered:
            conversation_id = row["conversation_id"]
            if first is None:
                language, unsure = next(later), False
            else:
                language, unsure = first.language, not first.sure and bool(first.ambiguous_with)
            trace = traces[conversation_id]
            turn = await read_turn(item, unit, seq, language, unsure, trace, received)
            traces[conversation_id] = trace or roots.setdefault(conversation_id, turn.traceparent)
            turns.append(turn.turn)
        await unit.db.execute(
            "WITH turn AS (INSERT INTO turns (turn_id, conversation_id, seq, language, text, sent_at)"
            " SELECT * FROM unnest($1::text[], $2::text[], $3::int[], $4::text[], $5::text[], $6::timestamptz[]))"
            " UPDATE conversations SET traceparent = t.traceparent"
            " FROM unnest($7::text[], $8::text[]) AS t(conversation_id, traceparent)"
            " WHERE conversations.conversation_id = t.conversation_id",
            [t.turn_id for t in turns],
            [t.conversation_id for t in turns],
            [t.seq for t in turns],
            [t.language for t in turns],
            [t.text for t in turns],
            [t.sent_at.ToDatetime(tzinfo=timezone.utc) for t in turns],
            list(roots),
            list(roots.values()),
        )

    async def read_turn(
        item: Item, unit: UnitOfWork, seq: int, language: str, unsure: bool, trace: str, received: Timestamp
    ) -> "ReadTurn":
        inbound, event = item.value, item.value.event
        message = event.message
        parent = telemetry.context_from_traceparent(trace) or telemetry.context_from_traceparent(event.traceparent)
        # The first turn's span becomes the conversation's trace, stored with the turn.
        with telemetry.consume_span(
            "intake turn", item.record, parent=parent, **{"relais.conversation_id": event.subject}
        ):
            await customer_contact.keep(unit.db, event.subject, inbound.phone, message.text, inbound.text)
            turn = pb.Turn(
                turn_id=event.event_key,
                conversation_id=event.subject,
                seq=seq,
                channel=message.channel,
                customer=message.customer,
                language=language,
                text=inbound.text,
                sent_at=message.sent_at,
                received_at=received,
                language_unsure=unsure,
            )
            turn.customer.language = turn.customer.language or language
            unit.emit(
                event.event_key,
                [
                    bus.Record(
                        topics.TURNS, event.subject.encode(), turn.SerializeToString(), telemetry.inject_headers()
                    )
                ],
            )
            return ReadTurn(turn, telemetry.current_traceparent())

    async def survey_answer(item: Item, unit: UnitOfWork) -> None:
        event = item.value.event
        conversation = await unit.db.fetchrow(
            "SELECT customer_id, channel, language, traceparent FROM conversations WHERE conversation_id = $1",
            event.subject,
        )
        if conversation is None:
            raise bus.BadInput(f"survey for unknown conversation {event.subject!r}")
        parent = telemetry.context_from_traceparent(conversation["traceparent"])
        with telemetry.consume_span(
            "intake survey", item.record, parent=parent, **{"relais.conversation_id": event.subject}
        ):
            outcome = pb.Outcome(
                outcome_id=f"{event.event_key}/survey",
                conversation_id=event.subject,
                kind=pb.OUTCOME_KIND_SURVEY,
                customer_id=conversation["customer_id"],
                language=conversation["language"],
                channel=cloudevents.CHANNELS.get(conversation["channel"], pb.CHANNEL_UNSPECIFIED),
                survey_scale=event.survey.scale or pb.SURVEY_SCALE_CSAT,
                survey_score=event.survey.score,
                survey_comment=redact(event.survey.comment),
                at=event.survey.answered_at,
            )
            unit.emit(
                event.event_key,
                [
                    bus.Record(
                        topics.OUTCOMES, event.subject.encode(), outcome.SerializeToString(), telemetry.inject_headers()
                    )
                ],
            )

    return worker.Service(
        decode=decode,
        handle_batch=handle_batch,
        topics=(topics.CONTACT_EVENTS,),
        background=(lambda: retention.run_periodically(w.pool),),
    )


@dataclass
class ReadTurn:
    turn: pb.Turn
    traceparent: str  # its span's: the conversation's trace when it is the first turn


def main() -> None:
    serve("intake", lambda settings, stop: worker.run(settings, stop, build))


if __name__ == "__main__":
    main()
