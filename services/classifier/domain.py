"""The classifier's pure logic, together: language, intent, sentiment and human request for a message.

catalogue = load_catalogue()
model = IntentModel.train(catalogue, seed=0)
result = classify("Où en est ma commande CMD-123456 ?", None, model, catalogue)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from relais.classifier.catalogue import HUMAN_INTENT, Catalogue
from relais.classifier.model import IntentModel
from relais.classifier.sentiment import Sentiment, analyse_message, extract_amount
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
    predictions = model.predict_batch([text for text, _ in messages], folded=folded)
    return [
        _classification(text, hint, prediction, catalogue, folded_text)
        for (text, hint), prediction, folded_text in zip(messages, predictions, folded)
    ]


def _classification(
    text: str, language_hint: str | None, prediction, catalogue: Catalogue, folded: str
) -> Classification:
    language = detect_language(text, language_hint)
    sentiment, human = analyse_message(text, language, folded)
    amount = extract_amount(text)
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
    )
