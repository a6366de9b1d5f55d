"""Quick classifier benchmark: training time and per-message cost, printed as JSON (nothing asserted).

    python bench/classifier_quick.py          # timings
    python bench/classifier_quick.py --cv     # plus 5-fold cross-validation over a few C values

Needs the `relais` package importable (pip install -e . from the repository root).
"""

import argparse
import json
import platform
import statistics
import time

from relais.classifier import domain, sentiment
from relais.classifier.catalogue import Catalogue, load_catalogue
from relais.classifier.model import IntentModel
from relais.common import progress

MESSAGES = [
    "Où en est ma commande CMD-123456 ?",
    "Vous êtes ouverts le dimanche ?",
    "Combien il me reste sur mon compte ?",
    "On m'a volé ma carte, je ne sais plus quoi faire",
    "Je veux parler à un conseiller",
    "C'est inadmissible, toujours pas de remboursement !!!",
    "Ma nouvelle carte n'est jamais arrivée",
    "Il y a un prélèvement que je ne reconnais pas",
    "quelle est la capitale de l'Australie",
    "Je voudrais résilier mon abonnement",
    "Where is my order CMD-654321?",
    "what time do you close tonight",
    "How much is left on my card?",
    "My card was stolen and I have no money",
    "Can I talk to a real person?",
    "This is ridiculous, worst service ever",
    "My parcel says delivered but I never got it",
    "I want to return these shoes",
    "tell me a joke",
    "close my account pls",
]
N = 1000


def _per_message_us(function, items) -> float:
    start = time.perf_counter()
    for item in items:
        function(item)
    return (time.perf_counter() - start) / len(items) * 1e6


def _cross_validation(catalogue: Catalogue) -> dict:
    """Accuracy of the best guess on catalogue examples never seen in training, per C."""
    import numpy as np
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    texts, labels = IntentModel.training_set(catalogue, background=False)
    targets = np.array(labels)
    results = {}
    for c in (1.0, 3.0, 10.0, 30.0, 100.0):
        scores = []
        for seed in range(3):
            folds = StratifiedKFold(5, shuffle=True, random_state=seed)
            predicted = cross_val_predict(IntentModel.build_pipeline(seed, c), texts, targets, cv=folds)
            scores.append(float((predicted == targets).mean()))
        results[f"C={c:g}"] = round(statistics.mean(scores), 3)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cv", action="store_true", help="also run 5-fold cross-validation (slower)")
    args = parser.parse_args()

    start = time.perf_counter()
    catalogue = load_catalogue()
    load_s = time.perf_counter() - start

    train_s = []
    for _ in progress.track(range(3), "training the catalogue's model 3 times"):
        start = time.perf_counter()
        model = IntentModel.train(catalogue, seed=0)
        train_s.append(time.perf_counter() - start)

    start = time.perf_counter()
    domain.detect_language("warm up the language detector")
    detector_s = time.perf_counter() - start

    texts = [MESSAGES[i % len(MESSAGES)] for i in range(N)]
    model.predict(texts[0])  # warm-up
    single_us = _per_message_us(model.predict, texts)
    start = time.perf_counter()
    model.predict_batch(texts)
    batch_us = (time.perf_counter() - start) / N * 1e6

    report = {
        "python": platform.python_version(),
        "catalogue": {
            "version": catalogue.version,
            "intents": len(catalogue),
            "examples": len(catalogue.training_examples()),
            "load_s": round(load_s, 4),
        },
        "train_s": {"min": round(min(train_s), 3), "median": round(statistics.median(train_s), 3)},
        "language_detector_first_call_s": round(detector_s, 3),
        "per_message_us": {
            "predict_single": round(single_us, 1),
            "predict_batch_1000": round(batch_us, 1),
            "detect_language": round(_per_message_us(domain.detect_language, texts), 1),
            "analyse_sentiment": round(_per_message_us(lambda t: sentiment.analyse_sentiment(t, "fr"), texts), 1),
            "asks_for_human": round(_per_message_us(sentiment.asks_for_human, texts), 1),
            "classify": round(_per_message_us(lambda t: domain.classify(t, None, model, catalogue), texts), 1),
        },
        "predictions": {
            text: (p.intent, round(p.confidence, 3))
            for text, p in zip(MESSAGES, model.predict_batch(MESSAGES), strict=True)
        },
    }
    if args.cv:
        with progress.stage("5-fold cross-validation"):
            report["cross_validation_accuracy"] = _cross_validation(catalogue)
    print(json.dumps(report, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    with progress.reporting("bench/classifier_quick.py"):
        main()
