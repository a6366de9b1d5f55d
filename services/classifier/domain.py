"""The classifier's pure logic, together: language, intent, sentiment and human request for a message.

catalogue = load_catalogue()
model = IntentModel.train(catalogue, seed=0)
result = classify("Où en est ma commande CMD-123456 ?", None, model, catalogue)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from relais.classifier.catalogue import HUMAN_INTENT, Catalogue
from relais.classifier.model import IntentModel
from relais.classifier.sentiment import Sentiment, analyse_message, extract_amount
from relais.classifier.signals import churn_risk, distinct_requests, segments
from relais.common.language import detect_language, fold
from relais.common.pb import conversation_pb2 as pb


@dataclass(frozen=True)
class Classification:
    """What the classifier attaches to a turn."""

    language: str
    intent: str | None
    confidence: float
    out_of_scope: bool
    sentiment: Sentiment
    asks_for_human: bool
    best_guess: str | None
    ranked: list[tuple[str, float]] = field(hash=False)
    amount: float | None = None
    churn_risk: bool = False  # the customer may leave us (the catalogue's churn_risk cues)
    other_intents: tuple[str, ...] = ()  # further distinct requests in the message, besides `intent`


def classify(text: str, language_hint: str | None, model: IntentModel, catalogue: Catalogue) -> Classification:
    """Language, intent, sentiment and human request for one customer message."""
    return classify_batch([(text, language_hint)], model, catalogue)[0]


def classify_batch(
    messages: Sequence[tuple[str, str | None]], model: IntentModel, catalogue: Catalogue
) -> list[Classification]:
    """classify() for many (text, language hint) at once: the intent model runs once for all of them."""
    if model.catalogue_version != catalogue.version or set(model.classes) != set(catalogue.intents):
        raise ValueError(
            f"model trained on catalogue {model.catalogue_version!r} does not match "
            f"catalogue {catalogue.version!r}; retrain it"
        )
    folded = [fold(text) for text, _ in messages]  # once, for the model and the sentiment
    languages = [detect_language(text, hint) for text, hint in messages]  # the model may weigh a language its way
    predictions = model.predict_batch([text for text, _ in messages], folded=folded, languages=languages)
    results = [
        _classification(text, language, prediction, catalogue, folded_text)
        for (text, _), language, prediction, folded_text in zip(messages, languages, predictions, folded)
    ]
    return _with_other_requests(results, [text for text, _ in messages], model, catalogue)


def _with_other_requests(
    results: list[Classification], texts: Sequence[str], model: IntentModel, catalogue: Catalogue
) -> list[Classification]:
    """Each message cut into the parts that could be requests, all parts classified in one batch: two or more parts
    the model is sure of, with distinct intents, are several requests."""
    parts = [segments(text) for text in texts]
    flat = [part for message_parts in parts for part in message_parts if len(message_parts) > 1]
    if not flat:
        return results
    languages = [
        r.language for r, message_parts in zip(results, parts) if len(message_parts) > 1 for _ in message_parts
    ]
    predictions = iter(model.predict_batch(flat, languages=languages))
    out = []
    for result, message_parts in zip(results, parts):
        if len(message_parts) < 2:
            out.append(result)
            continue
        scored = [(p.intent, p.confidence) for p in (next(predictions) for _ in message_parts)]
        found = distinct_requests(scored, catalogue.threshold_for, frozenset({HUMAN_INTENT}))
        others = tuple(i for i in found if i != result.intent)
        out.append(replace(result, other_intents=others) if len(found) >= 2 else result)
    return out


def _classification(text: str, language: str, prediction, catalogue: Catalogue, folded: str) -> Classification:
    sentiment, human = analyse_message(text, language, folded)
    amount = extract_amount(text)
    churn = churn_risk(text, language, catalogue.churn_cues)
    if human and HUMAN_INTENT in catalogue:
        return Classification(
            language=language,
            intent=HUMAN_INTENT,
            confidence=1.0,
            out_of_scope=False,
            sentiment=sentiment,
            asks_for_human=True,
            best_guess=HUMAN_INTENT,
            ranked=prediction.ranked,
            amount=amount,
            churn_risk=churn,
        )
    return Classification(
        language=language,
        intent=prediction.intent,
        confidence=prediction.confidence,
        out_of_scope=prediction.out_of_scope,
        sentiment=sentiment,
        asks_for_human=human,
        best_guess=prediction.best_guess,
        ranked=prediction.ranked,
        amount=amount,
        churn_risk=churn,
    )


def to_classification_proto(result: Classification, catalogue: Catalogue) -> pb.Classification:
    """What travels with the turn to the bot."""
    s = result.sentiment
    return pb.Classification(
        intent=result.intent or "",
        confidence=result.confidence,
        out_of_scope=result.out_of_scope,
        best_guess=result.best_guess or "",
        asks_for_human=result.asks_for_human,
        sentiment=pb.Sentiment(score=s.score, anger=s.anger, distress=s.distress, urgency=s.urgency),
        catalogue_version=catalogue.version,
        amount=result.amount or 0.0,
        churn_risk=result.churn_risk,
        other_intents=list(result.other_intents),
    )
