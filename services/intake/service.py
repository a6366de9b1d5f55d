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

from aiokafka import ConsumerRecord

from relais.common import bus, cloudevents, customer_contact, outbox, retention, telemetry, topics, worker
from relais.common.language import guess_language
from relais.common.pb import conversation_pb2 as pb
from relais.common.redact import redact
from relais.common.runtime import serve
from datetime import timezone

from google.protobuf.timestamp_pb2 import Timestamp


async def build(w: worker.Worker) -> worker.Service:
    async def handle(record: ConsumerRecord) -> None:
        event = cloudevents.parse_contact_event(record.value, record.headers, w.settings.max_text_chars)
        if event.survey is not None:
            await survey_answer(record, event)
            return
        message = event.message
        # Detected on the text as written (in memory only); everything kept or sent is redacted.
        guess = guess_language(message.text, hint=message.customer.language)
        text = redact(message.text)
        phone = customer_contact.take_phone(message)  # the number to call back never travels in a turn

        async def apply(conn) -> list[bus.Record]:
            conversation = await conn.fetchrow(
                "INSERT INTO conversations (conversation_id, customer_id, channel, language, tier, turn_count)"
                " VALUES ($1, $2, $3, $4, $5, 1)"
                " ON CONFLICT (conversation_id) DO UPDATE"
                " SET turn_count = conversations.turn_count + 1, updated_at = now()"
                " RETURNING turn_count, traceparent, language",  # the language of its first turn
                event.subject, message.customer.id, cloudevents.CHANNEL_NAMES[message.channel], guess.language,
                message.customer.tier,
            )
            first_turn = conversation["turn_count"] == 1
            # Later turns are read knowing the conversation's language (set by its first turn).
            language = (guess if first_turn else
                        guess_language(message.text, message.customer.language, conversation["language"])).language
            unsure = first_turn and not guess.sure and bool(guess.ambiguous_with)
            parent = telemetry.context_from_traceparent(conversation["traceparent"]) or telemetry.context_from_traceparent(event.traceparent)
            with telemetry.consume_span("intake turn", record, parent=parent, **{"relais.conversation_id": event.subject}):
                # The first turn's span becomes the conversation's trace, stored with the turn below.
                root = "" if conversation["traceparent"] else (telemetry.current_traceparent() or "")
                await customer_contact.keep(conn, event.subject, phone, message.text, text)
                received = Timestamp()
                received.GetCurrentTime()
                turn = pb.Turn(
                    turn_id=event.event_key, conversation_id=event.subject, seq=conversation["turn_count"],
                    channel=message.channel, customer=message.customer, language=language, text=text,
                    sent_at=message.sent_at, received_at=received, language_unsure=unsure,
                )
                turn.customer.language = turn.customer.language or language
                # One statement: the turn, and (first turn only) the conversation's trace context.
                await conn.execute(
                    "WITH turn AS (INSERT INTO turns (turn_id, conversation_id, seq, language, text, sent_at)"
                    " VALUES ($1, $2, $3, $4, $5, $6))"
                    " UPDATE conversations SET traceparent = $7 WHERE $7 <> '' AND conversation_id = $2",
                    turn.turn_id, turn.conversation_id, turn.seq, language, turn.text, message.sent_at.ToDatetime(tzinfo=timezone.utc),
                    root,
                )
                return [bus.Record(topics.TURNS, event.subject.encode(), turn.SerializeToString(), telemetry.inject_headers())]

        await outbox.process_once(w.pool, w.producer, "intake", event.event_key, apply)

    async def survey_answer(record: ConsumerRecord, event: cloudevents.ContactEvent) -> None:
        async def apply(conn) -> list[bus.Record]:
            conversation = await conn.fetchrow(
                "SELECT customer_id, channel, language, traceparent FROM conversations WHERE conversation_id = $1",
                event.subject)
            if conversation is None:
                raise bus.BadInput(f"survey for unknown conversation {event.subject!r}")
            parent = telemetry.context_from_traceparent(conversation["traceparent"])
            with telemetry.consume_span("intake survey", record, parent=parent, **{"relais.conversation_id": event.subject}):
                outcome = pb.Outcome(
                    outcome_id=f"{event.event_key}/survey", conversation_id=event.subject, kind=pb.OUTCOME_KIND_SURVEY,
                    customer_id=conversation["customer_id"], language=conversation["language"],
                    channel=cloudevents.CHANNELS.get(conversation["channel"], 0),
                    survey_scale=event.survey.scale or pb.SURVEY_SCALE_CSAT, survey_score=event.survey.score,
                    survey_comment=redact(event.survey.comment), at=event.survey.answered_at)
                return [bus.Record(topics.OUTCOMES, event.subject.encode(), outcome.SerializeToString(),
                                   telemetry.inject_headers())]

        await outbox.process_once(w.pool, w.producer, "intake", event.event_key, apply)

    return worker.Service(handle=handle, topics=(topics.CONTACT_EVENTS,), batched=True,
                          background=(lambda: retention.run_periodically(w.pool),))


def main() -> None:
    serve("intake", lambda settings, stop: worker.run(settings, stop, build))


if __name__ == "__main__":
    main()
