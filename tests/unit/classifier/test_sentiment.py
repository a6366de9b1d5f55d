"""Sentiment per message and across a conversation, amounts of money, explicit requests for a person.

(The original per-message cases stay in test_domain.py; these cover what sentiment.py added.)
"""

import pytest

from relais.classifier.sentiment import (
    analyse_sentiment,
    asks_for_human,
    escalating,
    extract_amount,
    sentiment_trend,
)

# ----------------------------------------------------------------------- customer-service idioms


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("ça fait trois fois que j'appelle", "fr"),
        ("Cela fait 4 fois que je vous écris pour la même chose", "fr"),
        ("C'est la troisième fois que je vous contacte", "fr"),
        ("3e relance pour ma commande", "fr"),
        ("on se moque de moi", "fr"),
        ("Vous vous moquez de moi ou quoi ?", "fr"),
        ("vous vous foutez de ma gueule", "fr"),
        ("Vous me prenez pour un idiot ?", "fr"),
        ("Ce n'est pas la première fois que ça arrive", "fr"),
        ("Je suis en attente depuis 45 minutes", "fr"),
        ("une heure au téléphone pour rien", "fr"),
        ("I've been on hold for an hour", "en"),
        ("45 minutes on hold and nobody picked up", "en"),
        ("this is the third time", "en"),
        ("3rd time I'm asking about my refund", "en"),
        ("I've called you five times about this", "en"),
        ("Are you kidding me?", "en"),
        ("Stop giving me the runaround", "en"),
        ("It's not the first time this happens", "en"),
        ("I've been waiting for an hour in this chat", "en"),
    ],
)
def test_exasperation_idioms_count_as_anger(text, language):
    sentiment = analyse_sentiment(text, language)
    assert sentiment.anger, (text, sentiment)
    assert sentiment.score < 0


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("C'est la première fois que je commande chez vous", "fr"),
        ("J'attends ma carte depuis trois semaines", "fr"),
        ("Pouvez-vous mettre ma commande en attente ?", "fr"),
        ("J'ai commandé trois fois cette année, toujours parfait", "fr"),
        ("This is the first time I order from you", "en"),
        ("Can you put my order on hold?", "en"),
        ("I've been waiting two weeks for my card", "en"),
        ("I ordered three times this year, always great", "en"),
        ("Is the store open late on Fridays?", "en"),
        ("Le magasin est ouvert tard le jeudi ?", "fr"),
    ],
)
def test_look_alikes_of_the_idioms_are_not_anger(text, language):
    sentiment = analyse_sentiment(text, language)
    assert not sentiment.anger, (text, sentiment)


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("On vient de me voler mon portefeuille, je n'ai plus de carte ni d'argent, aidez-moi", "fr"),
        ("Je n'arrive plus à payer mon loyer, je suis au bout du rouleau", "fr"),
        ("Mon mari est décédé et le compte est bloqué", "fr"),
        ("Stolen wallet, no card no money, I'm stuck", "en"),
        ("I can't pay my rent this month and I'm freaking out", "en"),
        ("My mother passed away and I can't access her account", "en"),
    ],
)
def test_more_distress(text, language):
    sentiment = analyse_sentiment(text, language)
    assert sentiment.distress, (text, sentiment)
    assert sentiment.score < 0


# ------------------------------------------------------------ capitals, punctuation, negation


def test_capitals_are_shouting_but_acronyms_are_not():
    assert analyse_sentiment("JE VEUX MON REMBOURSEMENT MAINTENANT", "fr").anger
    assert analyse_sentiment("WHERE IS MY PARCEL", "en").anger
    calm = analyse_sentiment("Mon IBAN et le mandat SEPA pour CMD-123456, merci", "fr")
    assert not calm.anger and calm.score >= 0


def test_repeated_question_marks_are_impatience_not_anger():
    impatient = analyse_sentiment("Où est mon colis ???", "fr")
    assert impatient.score < 0 and not impatient.anger
    assert analyse_sentiment("Still nothing?!", "en").score < 0
    assert analyse_sentiment("Merci ???", "fr").score >= 0
    assert analyse_sentiment("Où est ma commande !!!", "fr").anger  # "!!!" on a neutral message stays anger


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("pas content du tout", "fr"),
        ("Je ne suis pas du tout satisfait", "fr"),
        ("pas très content de votre service", "fr"),
        ("not happy at all", "en"),
        ("I'm not satisfied with this", "en"),
    ],
)
def test_negated_praise_is_negative(text, language):
    assert analyse_sentiment(text, language).score < 0, text


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("pas de problème", "fr"),
        ("sans problème, merci", "fr"),
        ("Je ne suis pas en colère", "fr"),
        ("no problem", "en"),
        ("I'm not angry, no worries", "en"),
        ("never had an issue with you before", "en"),
    ],
)
def test_negated_complaints_are_not_negative(text, language):
    sentiment = analyse_sentiment(text, language)
    assert sentiment.score >= 0 and not sentiment.anger, (text, sentiment)


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("Could you please help me find my invoice?", "en"),
        ("Aidez-moi svp à trouver ma facture", "fr"),
        ("my phone died so I couldn't log in", "en"),
        ("Je voudrais payer mon loyer par prélèvement", "fr"),
        ("Je suis seul titulaire du compte", "fr"),
        ("J'ai peur que ma commande n'arrive pas pour Noël", "fr"),
        ("There was a robbery at the shop and my card was taken", "en"),
        ("The delivery is three days late", "en"),
    ],
)
def test_ordinary_worries_raise_no_flag(text, language):
    sentiment = analyse_sentiment(text, language)
    assert not (sentiment.anger or sentiment.distress), (text, sentiment)


# ------------------------------------------------------------------------ across the conversation


def test_trend_is_the_least_squares_slope_of_the_last_five_scores():
    assert sentiment_trend([]) == 0.0
    assert sentiment_trend([-0.9]) == 0.0
    assert sentiment_trend([0.0, -0.5]) == pytest.approx(-0.5)
    assert sentiment_trend([0.2, 0.0, -0.2, -0.4]) == pytest.approx(-0.2)
    assert sentiment_trend([0.5, 0.5, 0.5]) == pytest.approx(0.0)
    assert sentiment_trend([-0.6, -0.3, 0.0]) == pytest.approx(0.3)
    # only the last five count: the early calm turns are forgotten
    assert sentiment_trend([0.9, 0.9, 0.9, 0.0, -0.1, -0.2, -0.3, -0.4]) == pytest.approx(-0.1)
    assert sentiment_trend((0.0, 1.0, 0.0)) == pytest.approx(0.0)


@pytest.mark.parametrize(
    ("scores", "expected"),
    [
        ((0.1, -0.2, -0.4), True),  # calm, then worse and worse
        ((0.2, -0.1, -0.4, -0.7), True),
        ((0.1, -0.2, -0.4, -0.6), False),  # slope -0.23 per turn: just under the default
        ((0.0, -0.3), True),
        ((0.0, -0.2), False),  # slope -0.2: not clearly worse
        ((0.6, 0.2), False),  # cooler but still positive
        ((-0.8, -0.8, -0.85), False),  # upset all along: the anger flag's job, not the trend's
        ((-0.6, -0.3, 0.0), False),  # calming down
        ((-0.5,), False),
        ((), False),
    ],
)
def test_escalating(scores, expected):
    assert escalating(scores) is expected


def test_escalating_threshold_is_a_parameter():
    assert escalating((0.0, -0.2), threshold=-0.15)
    assert not escalating((0.1, -0.2, -0.4), threshold=-0.5)


# ------------------------------------------------------------------------------------------ amounts


@pytest.mark.parametrize(
    ("text", "amount"),
    [
        ("Je veux être remboursé de 450 €", 450.0),
        ("450€ débités", 450.0),
        ("a charge of €450", 450.0),
        ("un virement de 1 200,50 euros", 1200.5),
        ("un virement de 1\u202f200,50 €", 1200.5),
        ("I paid £1,200.50", 1200.5),
        ("$99 twice", 99.0),
        ("450 EUR", 450.0),
        ("EUR 1.200,00", 1200.0),
        ("89,90 € puis 12,99 €", 89.9),  # the largest amount mentioned
        ("30 quid", 30.0),
        ("plafond de 2k€", 2000.0),
        ("10 000 € pour la voiture", 10000.0),
        ("£59.90 refund", 59.9),
        ("commande CMD-123456 de 450 € le 12/03/2026", 450.0),
    ],
)
def test_extract_amount(text, amount):
    assert extract_amount(text) == pytest.approx(amount)


@pytest.mark.parametrize(
    "text",
    [
        "Où en est CMD-123456 ?",
        "le 12/03/2026 à 14h30",
        "appelez-moi au 06 12 34 56 78",
        "+44 20 7946 0958",
        "20 % de réduction",
        "a 15% discount",
        "J'ai commandé 3 articles",
        "compte se terminant par 4821",
        "",
    ],
)
def test_no_amount_without_a_currency(text):
    assert extract_amount(text) is None


# ----------------------------------------------------------------------- explicit requests for a person


@pytest.mark.parametrize(
    "text",
    [
        "je veux parler à un conseillé",
        "un humain svp",
        "agent",
        "talk to a real person",
        "representative",
        "speak to someone",
        "un conseiler",
        "humain!!",
        "agent please",
        "operator",
        "conseiller",
        "humain",
        "CONSEILLER SVP",
        "je veux parler a qqn",
        "parler à quelqu'un de réel",
        "mettez-moi un conseiller",
        "Merci de me mettre en relation avec mon conseiller",
        "Pouvez-vous demander à un conseiller de me rappeler ?",
        "je veux qu'un conseiller me rappelle",
        "rappelez-moi svp",
        "Please connect me with my relationship manager",
        "Can an advisor call me back?",
        "Can someone call me back please",
        "customer service agent please",
        "get me a human",
        "transfer me",
        "i wanna talk to a human",
        "let me speak to an agent",
        "representive please",
        "live agent",
        "Je préfère qu'un agent s'occupe de mon dossier",
        "Can you put me in touch with a human?",
    ],
)
def test_explicit_requests_for_a_person_are_always_recognised(text):
    assert asks_for_human(text), text


@pytest.mark.parametrize(
    "text",
    [
        "mon conseiller m'a dit que la carte arriverait",
        "My relationship manager said it was fine",
        "I really like my advisor",
        "Rappelez-moi vos horaires d'ouverture",
        "Vous deviez me rappeler hier",
        "Je vous conseille de revoir votre service",
        "Tu peux me conseiller un bon film ?",
        "Je souhaite signaler un conseiller qui m'a raccroché au nez",
        "I'd like to report an advisor who hung up on me",
        "I transferred money to someone yesterday",
        "Someone called me claiming to be the bank",
        "Aidez-moi à trouver ma facture",
        "human rights",
        "Pas besoin de parler à un conseiller, je veux juste mon solde",
    ],
)
def test_mentions_and_look_alikes_are_not_requests(text):
    assert not asks_for_human(text), text
