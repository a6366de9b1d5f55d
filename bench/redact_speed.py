"""Redaction cost per message (relais.common.redact.redact), printed as JSON; nothing asserted.

    python bench/redact_speed.py            # the corpus, realistic messages, and long messages
    python bench/redact_speed.py --rounds 5

Three sets: the redaction corpus (tests/unit/common/redaction_corpus.csv: personal data and near-misses, every row
holds digits or an @), realistic customer messages (most carry no personal data, some an order number,
an amount or a date, a few a phone number or an identifier), and long messages (a complaint of ~1,500
characters with numbers in it). Realistic messages are timed twice: with the numbering-plan answers
cached for numbers seen before (as a service runs), and cold (every number new). The budget is 200 µs per
message.
"""

import argparse
import csv
import json
import platform
import statistics
import time
from pathlib import Path

from relais.common import progress, redact as rules
from relais.common.redact import redact

CORPUS = Path(__file__).resolve().parent.parent / "tests" / "unit" / "common" / "redaction_corpus.csv"

REALISTIC = [
    "Où en est ma commande CMD-123456 ?",
    "Bonjour, je voudrais savoir si vous êtes ouverts le dimanche",
    "Combien il me reste sur mon compte ?",
    "On m'a volé ma carte hier soir, je ne sais plus quoi faire",
    "Je veux parler à un conseiller",
    "C'est inadmissible, toujours pas de remboursement !!!",
    "Ma nouvelle carte n'est jamais arrivée, commandée le 12/03/2026",
    "Il y a un prélèvement de 49,90 € que je ne reconnais pas",
    "J'ai payé 1 234,56 € le 12/03/2026 à 14:30 et rien reçu",
    "Rappelez-moi au 06 12 34 56 78 après 18h svp",
    "Where is my order CMD-654321?",
    "what time do you close tonight",
    "My card was stolen and I have no money",
    "Can I talk to a real person? Call me on (415) 555-0132",
    "This is ridiculous, worst service ever",
    "My parcel 1Z999AA10123456784 says delivered but I never got it",
    "I want to return these shoes, order ORD 0712345678",
    "my number is 020 7946 0958, call after 5pm",
    "Mon numéro de sécu 1 85 07 75 116 001 42 pour le dossier",
    "Code postal 75008, livraison au 3e étage",
    "ok merci",
    "Bonjour",
]

LONG = (
    "Bonjour, je vous écris pour la troisième fois au sujet de ma commande CMD-2024-118833 passée le 12/03/2026 "
    "pour un montant de 1 234,56 €. Le colis 6A12345678901 devait arriver le 15/03/2026 entre 14:30 et 18h00 au "
    "75008 Paris, mais rien. J'ai appelé votre service le 16/03 à 09:15, on m'a donné le ticket 987654321098765 "
    "et promis un rappel sous 48h. Toujours rien. Je suis joignable au 06 12 34 56 78 ou au bureau au "
    "01 42 68 53 00, poste 214. Mon conjoint a essayé depuis Londres au +44 20 7946 0958 sans succès. "
) * 3


def cold() -> None:
    """Forget the numbering-plan answers cached for numbers seen before: every number is new."""
    rules._national_phone.cache_clear()
    rules._international_phone.cache_clear()


def per_message_us(messages: list[str], rounds: int, before=lambda: None) -> dict:
    """Median over rounds of the mean time per message, and the slowest single message seen."""
    means, slowest = [], 0.0
    for _ in range(rounds):
        start = time.perf_counter()
        for text in messages:
            before()
            began = time.perf_counter()
            redact(text)
            slowest = max(slowest, time.perf_counter() - began)
        means.append((time.perf_counter() - start) / len(messages))
    return {
        "messages": len(messages),
        "us_per_message": round(statistics.median(means) * 1e6, 1),
        "slowest_us": round(slowest * 1e6, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    corpus = [row["text"] for row in csv.DictReader(CORPUS.open(encoding="utf-8", newline=""))]
    for text in corpus + REALISTIC + [LONG]:  # warm-up: compiled patterns, the numbering plans' metadata
        redact(text)
    with progress.stage(f"timing redaction ({args.rounds} rounds over 4 sets of messages)"):
        figures = {
            "corpus": per_message_us(corpus, args.rounds),
            "realistic": per_message_us(REALISTIC * 20, args.rounds),
            # Each message's numbers unseen (cache emptied before it; the emptying is counted too).
            "realistic_cold": per_message_us(REALISTIC * 20, args.rounds, cold),
            "long_1500_chars": per_message_us([LONG] * 20, args.rounds) | {"chars": len(LONG)},
        }
    print(
        json.dumps(
            {
                "bench": "redact_speed",
                "python": platform.python_version(),
                "budget_us": 200,
                **figures,
            }
        )
    )


if __name__ == "__main__":
    with progress.reporting("bench/redact_speed.py"):
        main()
