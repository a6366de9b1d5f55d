"""bot: answers the catalogue requests it may (opening hours, order status, account balance)
through gRPC lookups, and hands everything else to a person with the whole conversation.

Once a conversation is handed off the bot stays silent in it: the customer's next messages go
to routing (to the waiting task or the advisor), never to the bot.
"""

import asyncio
import time

from aiokafka import ConsumerRecord

from relais.bot import answers, lookups, policy
from relais.classifier.catalogue import load_catalogue
from relais.common import bus, cloudevents, metrics, telemetry, topics, transcript, worker
from relais.common.config import grpc_addr, service_token
from relais.common.pb import conversation_pb2 as pb
from relais.common.runtime import serve
from relais.common.unit_of_work import Item, UnitOfWork

SOURCE = "urn:relais:bot"


async def build(w: worker.Worker) -> worker.Service:
    catalogue = load_catalogue()
    # TLS and token: docs/security.md, "Access". Lookups are reads: a lookup service restarting is retried, not answered
    # "unavailable" to the customer at once.
    lookup, close_lookups = lookups.connect(grpc_addr("lookup"), service_token())

    def decode(record: ConsumerRecord) -> pb.Turn:
        turn = bus.parse(pb.Turn, record.value)
        if not turn.turn_id or not turn.conversation_id:
            raise bus.BadInput("turn without turn_id or conversation_id")
        return turn

    async def handle_batch(items: list[Item], unit: UnitOfWork) -> None:
        """Every conversation of the batch at once (their lookups concurrently), each one's turns in order; their
        contexts read in one statement and written in one more."""
        new = await unit.first_time([i.value.turn_id for i in items], [i.record for i in items])
        turns: dict[str, list[Item]] = {}
        for item in items:
            if item.value.turn_id in new:
                new.discard(item.value.turn_id)  # the same turn twice in one poll: answered once
                turns.setdefault(item.value.conversation_id, []).append(item)
        if not turns:
            return
        stored = {
            r["conversation_id"]: r
            for r in await unit.db.fetch(
                "SELECT conversation_id, context, handed_off FROM bot_conversations"
                " WHERE conversation_id = ANY($1::text[]) FOR UPDATE",
                list(turns),
            )
        }
        contexts = {
            c: pb.ConversationContext.FromString(stored[c]["context"]) if c in stored else _new_context(its[0].value)
            for c, its in turns.items()
        }
        tasks = [asyncio.ensure_future(conversation(its, contexts[c], unit)) for c, its in turns.items()]
        try:
            await asyncio.gather(*tasks)
        except BaseException:
            for task in tasks:
                task.cancel()
            raise
        await unit.db.execute(
            "INSERT INTO bot_conversations (conversation_id, context, failed_attempts, handed_off)"
            " SELECT * FROM unnest($1::text[], $2::bytea[], $3::int[], $4::bool[]) ON CONFLICT (conversation_id) DO UPDATE"
            " SET context = EXCLUDED.context, failed_attempts = EXCLUDED.failed_attempts,"
            " handed_off = EXCLUDED.handed_off, updated_at = now()",
            list(contexts),
            [c.SerializeToString() for c in contexts.values()],
            [policy.failed_attempts(c.bot_attempts) for c in contexts.values()],
            [c.HasField("handed_off_at") for c in contexts.values()],
        )

    async def conversation(items: list[Item], context: pb.ConversationContext, unit: UnitOfWork) -> None:
        for item in items:
            turn = item.value
            with telemetry.consume_span(
                "bot turn", item.record, **{"relais.conversation_id": turn.conversation_id}
            ) as span:
                handed_off = context.HasField("handed_off_at")
                transcript.append_turn(context, turn)  # within its byte budget: first and latest turns
                headers = telemetry.inject_headers()  # the turn's trace context, the same on each of its records
                if handed_off:  # the bot stays silent: the customer's messages go to routing
                    span.set_attribute("relais.forwarded", True)
                    outputs = [_to_routing(pb.HandoffEvent(customer_message=turn), turn, headers)]
                else:
                    outputs = await respond(turn, context, headers)
                    span.set_attribute("relais.handed_off", context.HasField("handed_off_at"))
                    _count(unit, context, turn.turn_id)
                unit.emit(turn.turn_id, outputs)

    async def respond(turn: pb.Turn, context: pb.ConversationContext, headers: telemetry.Headers) -> list[bus.Record]:
        state = policy.ConversationState.from_context(context)
        decision = policy.decide(turn, state, catalogue)
        if decision.action == policy.HANDOFF:
            return _handoff(turn, context, decision, catalogue, headers)
        intent = catalogue.intents[decision.intent]
        langs = answers.reply_languages(turn)
        lang = langs[0]
        if decision.action == policy.CLARIFY:
            answer = answers.Answer(answers.each(langs, intent.clarify_text), resolved=False)
        elif intent.answer:
            # answer_text is None only for an intent without an answer
            answer = answers.Answer(answers.each(langs, lambda lang: intent.answer_text(lang) or ""), resolved=True)
        else:
            answer = await answers.ANSWERS[intent.lookups[0]](turn, lookup)  # keyed by lookup name
        context.lookups.extend(answer.lookups)
        context.bot_attempts.append(
            pb.BotAttempt(
                turn_id=turn.turn_id,
                intent=intent.id,
                reply_text=answer.text,
                resolved=answer.resolved,
                clarification=decision.action == policy.CLARIFY,
            )
        )
        if decision.action == policy.ANSWER and not answer.resolved:
            after = policy.after_failed_attempt(state.failed_attempts + 1, intent.id)
            if after.handoff:
                return _handoff(turn, context, after, catalogue, headers)
        kind = pb.OUTCOME_KIND_BOT_ANSWERED if answer.resolved else pb.OUTCOME_KIND_BOT_CLARIFIED
        # The bot's first resolved answer closes the contact for it: it asks for the survey there, once.
        survey = (
            {"survey": cloudevents.survey_invitation(lang)}
            if answer.resolved and sum(a.resolved for a in context.bot_attempts) == 1
            else {}
        )
        return [
            telemetry.traced(  # the conversation's traceparent: a channel's own spans join its trace
                cloudevents.reply(
                    cloudevents.REPLY_BOT,
                    SOURCE,
                    f"{turn.turn_id}/bot",
                    turn.conversation_id,
                    answer.text,
                    lang,
                    in_reply_to=turn.turn_id,
                    intent=intent.id,
                    clarification=decision.action == policy.CLARIFY,
                    **survey,
                ),
                headers,
            ),
            _outcome(turn, kind, intent.id, headers),
        ]

    return worker.Service(
        decode=decode, handle_batch=handle_batch, topics=(topics.CLASSIFIED_TURNS,), close=close_lookups
    )


def _new_context(turn: pb.Turn) -> pb.ConversationContext:
    return pb.ConversationContext(
        conversation_id=turn.conversation_id, customer=turn.customer, channel=turn.channel, language=turn.language
    )


def _handoff(
    turn: pb.Turn, context: pb.ConversationContext, decision: policy.Decision, catalogue, headers: telemetry.Headers
) -> list[bus.Record]:
    context.reason = decision.reason
    context.reasons[:] = decision.reasons
    context.reason_detail = decision.detail
    context.intent = decision.intent
    intent = catalogue.intents.get(decision.intent)
    context.priority = intent.priority if intent is not None else 0
    context.language = turn.language or context.language
    _set_now(context.handed_off_at)
    if pb.HANDOFF_REASON_LANGUAGE_NOT_SERVED in decision.reasons:
        # The short answer in the customer's language; routing looks for an advisor who speaks it.
        notice, notice_language = answers.language_not_served(
            context.language, catalogue.unsupported_language_reply(context.language)
        )
    else:
        langs = answers.reply_languages(turn) if turn.language else (context.language or "en",)
        notice, notice_language = answers.each(langs, lambda lang: answers.text(lang, "handoff")), langs[0]
    return [
        telemetry.traced(
            cloudevents.reply(
                cloudevents.REPLY_HANDOFF,
                SOURCE,
                f"{turn.turn_id}/handoff",
                turn.conversation_id,
                notice,
                notice_language,
                in_reply_to=turn.turn_id,
                reason=_REASON_NAMES[decision.reason],
                reasons=[_REASON_NAMES[r] for r in decision.reasons],
            ),
            headers,
        ),
        _to_routing(pb.HandoffEvent(handoff=context), turn, headers),
        _outcome(turn, pb.OUTCOME_KIND_HANDED_OFF, decision.intent, headers, decision.reason),
    ]


def _count(unit: UnitOfWork, context: pb.ConversationContext, turn_id: str) -> None:
    """For the metrics (counted once the unit's outputs were sent): a hand-off by its primary reason, or an answer that
    resolved the request by its intent."""
    if context.HasField("handed_off_at"):
        unit.tally[metrics.HANDOFFS, _REASON_LABELS[context.reason]] += 1
    elif context.bot_attempts and context.bot_attempts[-1].turn_id == turn_id and context.bot_attempts[-1].resolved:
        unit.tally[metrics.BOT_ANSWERS, context.bot_attempts[-1].intent] += 1


def _to_routing(event: pb.HandoffEvent, turn: pb.Turn, headers: telemetry.Headers) -> bus.Record:
    return bus.Record(topics.HANDOFFS, turn.conversation_id.encode(), event.SerializeToString(), headers)


# Enum names read once (EnumTypeWrapper.Name looks each up through the descriptor).
_KIND_NAMES = {number: name for name, number in pb.OutcomeKind.items()}
_REASON_NAMES = {number: name for name, number in pb.HandoffReason.items()}
_REASON_LABELS = {number: name.removeprefix("HANDOFF_REASON_").lower() for name, number in pb.HandoffReason.items()}


def _outcome(
    turn: pb.Turn,
    kind: pb.OutcomeKind,
    intent: str,
    headers: telemetry.Headers,
    reason: pb.HandoffReason = pb.HANDOFF_REASON_UNSPECIFIED,
) -> bus.Record:
    outcome = pb.Outcome(
        outcome_id=f"{turn.turn_id}/{_KIND_NAMES[kind]}",
        conversation_id=turn.conversation_id,
        kind=kind,
        intent=intent,
        language=turn.language,
        channel=turn.channel,
        reason=reason,
        resolved=kind == pb.OUTCOME_KIND_BOT_ANSWERED,
        customer_id=turn.customer.id,
    )
    _set_now(outcome.at)
    return bus.Record(topics.OUTCOMES, turn.conversation_id.encode(), outcome.SerializeToString(), headers)


def _set_now(at) -> None:
    """Timestamp.GetCurrentTime's value (microseconds, UTC) without its trip through datetime."""
    seconds, micros = divmod(time.time_ns() // 1000, 1_000_000)
    at.seconds, at.nanos = seconds, micros * 1000


def main() -> None:
    serve("bot", lambda settings, stop: worker.run(settings, stop, build))


if __name__ == "__main__":
    main()
