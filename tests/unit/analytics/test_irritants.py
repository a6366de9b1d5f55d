"""Irritants: topics of negative verbatims, on a synthetic labelled corpus of French and English complaints."""

import random
import time
from collections import Counter

import pytest

from relais.analytics.irritants import find_irritants, is_queue_command, short_label

# Per theme and language: openings x complaints x endings, so each theme has dozens of distinct phrasings.
THEMES = {
    "delivery": {
        "en": (
            ["", "Hello, ", "Hi, ", "Still waiting: ", "Seriously, "],
            [
                "my parcel is late",
                "my order has not been delivered yet",
                "the delivery is two weeks late",
                "my package never arrived",
                "delivery was supposed to be on Monday and nothing",
                "the courier did not deliver my parcel",
                "my order is delayed again",
                "tracking says delivered but I have no package",
                "late delivery for order [ORDER]",
                "where is my parcel, it is very late",
            ],
            ["", ".", ", where is it?", " and nobody tells me why.", " This is unacceptable."],
        ),
        "fr": (
            ["", "Bonjour, ", "Bonjour ", "Encore une fois : ", "Franchement, "],
            [
                "mon colis est en retard",
                "ma commande n'est toujours pas livrée",
                "la livraison a deux semaines de retard",
                "mon colis n'est jamais arrivé",
                "livraison prévue lundi et toujours rien",
                "le livreur n'a pas livré mon colis",
                "ma commande est encore en retard",
                "le suivi indique livré mais je n'ai pas de colis",
                "retard de livraison pour la commande [ORDER]",
                "où est mon colis, il a beaucoup de retard",
            ],
            ["", ".", ", où est-il ?", " et personne ne me dit pourquoi.", " C'est inadmissible."],
        ),
    },
    "card": {
        "en": (
            ["", "Hello, ", "Hi, ", "Help: ", "Urgent: "],
            [
                "my card is blocked",
                "my card [CARD] was declined at the shop",
                "payment declined with my bank card",
                "my credit card got blocked for no reason",
                "card declined again when I pay online",
                "I can't pay, my card is blocked",
                "the card payment was refused",
                "my debit card keeps being declined",
                "why is my card [CARD] blocked",
                "my card was blocked after a payment",
            ],
            ["", ".", ", please unblock it.", " and I am abroad.", " I need it today."],
        ),
        "fr": (
            ["", "Bonjour, ", "Bonjour ", "Au secours : ", "Urgent : "],
            [
                "ma carte est bloquée",
                "ma carte [CARD] a été refusée au magasin",
                "paiement refusé avec ma carte bancaire",
                "ma carte bancaire est bloquée sans raison",
                "carte refusée encore une fois pour payer en ligne",
                "je ne peux pas payer, ma carte est bloquée",
                "le paiement par carte a été refusé",
                "ma carte est toujours refusée",
                "pourquoi ma carte [CARD] est bloquée",
                "ma carte a été bloquée après un paiement",
            ],
            ["", ".", ", merci de la débloquer.", " et je suis à l'étranger.", " J'en ai besoin aujourd'hui."],
        ),
    },
    "refund": {
        "en": (
            ["", "Hello, ", "Hi, ", "Once again: ", "Dear support, "],
            [
                "I still have not received my refund",
                "my refund never arrived",
                "where is my refund for the return",
                "you promised a refund three weeks ago",
                "the refund is not on my account",
                "refund not received after returning the item",
                "I returned the product and got no refund",
                "still no refund for order [ORDER]",
                "my money was not refunded",
                "the refund was approved but never received",
            ],
            ["", ".", ", I want my money back.", " This takes too long.", " Please check."],
        ),
        "fr": (
            ["", "Bonjour, ", "Bonjour ", "Encore une fois : ", "Madame, Monsieur, "],
            [
                "je n'ai toujours pas reçu mon remboursement",
                "mon remboursement n'est jamais arrivé",
                "où est mon remboursement pour le retour",
                "vous avez promis un remboursement il y a trois semaines",
                "le remboursement n'est pas sur mon compte",
                "remboursement non reçu après le retour de l'article",
                "j'ai renvoyé le produit et pas de remboursement",
                "toujours pas de remboursement pour la commande [ORDER]",
                "je n'ai pas été remboursé",
                "le remboursement a été validé mais jamais reçu",
            ],
            ["", ".", ", je veux récupérer mon argent.", " C'est beaucoup trop long.", " Merci de vérifier."],
        ),
    },
    "login": {
        "en": (
            ["", "Hello, ", "Hi, ", "Since yesterday ", "Again, "],
            [
                "I can't log in to the app",
                "the website says my password is wrong",
                "login fails on the mobile app",
                "I cannot connect to my account",
                "the app crashes when I try to log in",
                "password reset link does not work",
                "my account is locked after login attempts",
                "the site shows an error at login",
                "I can't sign in with [EMAIL]",
                "login impossible on the website",
            ],
            ["", ".", ", please fix it.", " and I tried everything.", " Very annoying."],
        ),
        "fr": (
            ["", "Bonjour, ", "Bonjour ", "Depuis hier ", "Encore, "],
            [
                "je n'arrive pas à me connecter à l'application",
                "le site dit que mon mot de passe est faux",
                "la connexion échoue sur l'application mobile",
                "impossible de me connecter à mon compte",
                "l'appli plante quand je veux me connecter",
                "le lien de réinitialisation du mot de passe ne marche pas",
                "mon compte est verrouillé après des essais de connexion",
                "le site affiche une erreur à la connexion",
                "je ne peux pas me connecter avec [EMAIL]",
                "connexion impossible sur le site",
            ],
            ["", ".", ", merci de corriger.", " et j'ai tout essayé.", " Très pénible."],
        ),
    },
    "service": {
        "en": (
            ["", "Hello, ", "Honestly, ", "Again ", "Frankly, "],
            [
                "your customer service is rude",
                "nobody answers the phone",
                "the agent hung up on me",
                "I waited an hour on the phone for nothing",
                "customer service never answers my emails",
                "the advisor was rude and unhelpful",
                "impossible to reach anyone at customer service",
                "I called five times and no answer",
                "your agents are rude",
                "no one ever calls back",
            ],
            ["", ".", ", terrible service.", " I am disgusted.", " Shameful."],
        ),
        "fr": (
            ["", "Bonjour, ", "Honnêtement, ", "Encore ", "Franchement, "],
            [
                "votre service client est impoli",
                "personne ne répond au téléphone",
                "le conseiller m'a raccroché au nez",
                "j'ai attendu une heure au téléphone pour rien",
                "le service client ne répond jamais à mes mails",
                "le conseiller était désagréable et impoli",
                "impossible de joindre le service client",
                "j'ai appelé cinq fois sans réponse",
                "vos conseillers sont impolis",
                "personne ne rappelle jamais",
            ],
            ["", ".", ", service lamentable.", " Je suis dégoûté.", " Honteux."],
        ),
    },
}
RELATED_WORDS = {
    "delivery": {
        "delivery",
        "livraison",
        "parcel",
        "colis",
        "late",
        "retard",
        "delivered",
        "livrée",
        "package",
        "order",
        "commande",
    },
    "card": {"card", "carte", "blocked", "bloquée", "declined", "refusée", "payment", "paiement", "bancaire", "bank"},
    "refund": {"refund", "remboursement", "refunded", "remboursé", "received", "reçu", "money", "argent"},
    "login": {
        "login",
        "connexion",
        "connecter",
        "password",
        "mot de passe",
        "app",
        "application",
        "site",
        "website",
        "account",
        "compte",
        "log",
    },
    "service": {
        "customer",
        "client",
        "service",
        "rude",
        "impoli",
        "phone",
        "téléphone",
        "agent",
        "conseiller",
        "answer",
        "répond",
        "réponse",
        "advisor",
    },
}
NOISE = [
    "[EMAIL]",
    "[CARD] [PHONE]",
    "bonjour",
    "hello?",
    "ok merci",
    "???",
    "test",
    "je veux parler à quelqu'un",
    "I want to talk to a human",
    "annuler",
    "cancel my subscription",
    "question about my invoice",
]


def phrasings(theme: str, language: str) -> list[str]:
    openings, complaints, endings = THEMES[theme][language]
    return [o + c + e for o in openings for c in complaints for e in endings]


def corpus(counts: dict[str, int], seed: int = 1, noise: int = 0) -> tuple[list[str], list[str]]:
    """(texts, themes): `counts[theme]` verbatims per theme, half French half English, plus noise."""
    rng = random.Random(seed)
    labelled = [
        (rng.choice(phrasings(theme, language)), theme)
        for theme, n in counts.items()
        for k in range(n)
        for language in ["en" if k % 2 else "fr"]
    ]
    labelled += [(rng.choice(NOISE), "noise") for _ in range(noise)]
    rng.shuffle(labelled)
    return [text for text, _ in labelled], [theme for _, theme in labelled]


def test_each_theme_has_many_phrasings_per_language():
    for theme in THEMES:
        for language in ("en", "fr"):
            assert len(set(phrasings(theme, language))) >= 15


def test_themes_are_recovered_with_readable_labels():
    texts, themes = corpus({theme: 120 for theme in THEMES}, noise=30)
    irritants = find_irritants(texts, max_topics=8, examples=len(texts))
    topic_of = {}
    for topic, irritant in enumerate(irritants):
        for example in irritant.examples:
            topic_of[example] = topic  # examples hold every member here, deduplicated by text
    # Identical texts share a topic, so mapping each text to its topic is exact.
    clusters = Counter((topic_of[text], theme) for text, theme in zip(texts, themes) if text in topic_of)
    in_topics = sum(clusters.values())
    purity = (
        sum(max(n for (c, _), n in clusters.items() if c == topic) for topic in {c for c, _ in clusters}) / in_topics
    )
    print(f"\npurity {purity:.3f}; labels: {[i.label for i in irritants]}")
    assert purity >= 0.8
    for theme in THEMES:
        per_topic = Counter(topic_of.get(text) for text, t in zip(texts, themes) if t == theme)
        majority, held = per_topic.most_common(1)[0]
        assert majority is not None and held / themes.count(theme) >= 0.7, (theme, per_topic)
        irritant = irritants[majority]
        assert any(word in irritant.label for word in RELATED_WORDS[theme]), (theme, irritant.label)
        assert set(irritant.languages) == {"en", "fr"}  # one topic per irritant in both languages
    assert sum(i.size for i in irritants) <= len(texts)
    assert sum(i.size for i in irritants) >= 0.9 * 5 * 120


def test_sizes_examples_terms_and_order():
    texts, _ = corpus({theme: 40 for theme in THEMES}, noise=10)
    irritants = find_irritants(texts, examples=3)
    assert [i.size for i in irritants] == sorted((i.size for i in irritants), reverse=True)
    assert sum(i.size for i in irritants) <= len(texts)
    members = find_irritants(texts, examples=len(texts))
    for short, full in zip(irritants, members):
        assert short.label == full.label and short.size == full.size
        assert 1 <= len(short.examples) <= 3
        assert set(short.examples) <= set(full.examples)  # examples belong to their topic
        assert short.examples == full.examples[: len(short.examples)]  # and are the closest to its centre
        assert short.terms and 2 <= len(short.label.split(" · ")) <= 4
    assert sum(len(set(i.examples)) for i in members) <= len(set(texts))


def test_trend_against_previous_window():
    current, _ = corpus({"delivery": 80, "card": 40, "refund": 40}, seed=2)
    previous, _ = corpus({"delivery": 40, "card": 40, "refund": 80}, seed=3)
    by_theme = {}
    for irritant in find_irritants(current, previous):
        for theme, words in (
            ("delivery", {"delivery", "livraison", "colis", "parcel"}),
            ("card", {"card", "carte"}),
            ("refund", {"refund", "remboursement"}),
        ):
            if words & set(irritant.label.split(" · ")):
                by_theme[theme] = irritant
    assert set(by_theme) == {"delivery", "card", "refund"}
    assert by_theme["delivery"].trend == pytest.approx(1.0, abs=0.1)
    assert by_theme["card"].trend == pytest.approx(0.0, abs=0.1)
    assert by_theme["refund"].trend == pytest.approx(-0.5, abs=0.1)
    for irritant in by_theme.values():
        assert irritant.trend == pytest.approx((irritant.size - irritant.previous_size) / irritant.previous_size)


def test_previous_window_verbatims_unlike_any_topic_are_not_counted():
    current, _ = corpus({"delivery": 30, "card": 30}, seed=4)
    previous = ["I would like to change the colour of my sofa"] * 10 + phrasings("card", "en")[:6]
    irritants = find_irritants(current, previous)
    assert sum(i.previous_size for i in irritants) == 6
    assert all(i.trend is None for i in find_irritants(current))


def test_placeholders_never_label_a_topic():
    texts = ["[CARD]", "[EMAIL] [PHONE]", "<IBAN>", "[CARD] merci"] * 10 + ["my [CARD] is blocked [CARD]"] * 5
    irritants = find_irritants(texts + corpus({"refund": 20, "login": 20})[0])
    placeholders = {"card_", "email", "phone", "iban", "[", "]", "<", ">"}
    for irritant in irritants:
        assert not any(p in irritant.label.lower() for p in placeholders), irritant.label
        assert not {"email", "phone", "iban"} & set(irritant.terms)
    assert find_irritants(["[CARD]", "[EMAIL]", "[PHONE]", "[CARD] [EMAIL]"] * 5) == []


def test_same_seed_same_output():
    texts, _ = corpus({theme: 30 for theme in THEMES}, noise=10)
    previous, _ = corpus({theme: 20 for theme in THEMES}, seed=9)
    assert find_irritants(texts, previous, seed=5) == find_irritants(texts, previous, seed=5)


def test_edge_cases():
    assert find_irritants([]) == []
    assert find_irritants(["my parcel is late", "colis en retard"], min_size=3) == []
    same = find_irritants(["my parcel is late"] * 12)
    assert len(same) == 1 and same[0].size == 12 and same[0].examples == ("my parcel is late",)
    assert set(same[0].label.split(" · ")) <= {"parcel", "late"}
    short = find_irritants(["late", "retard", "ko", "bug", "nul", "card", "refund", "?", "!!", "ok"] * 3)
    assert all(i.size >= 3 and i.label for i in short)
    assert find_irritants(["bonjour", "merci", "hello", "please", "svp"] * 5) == []


def test_speed_on_five_thousand_verbatims():
    texts, _ = corpus({theme: 960 for theme in THEMES}, seed=7, noise=200)
    previous, _ = corpus({theme: 500 for theme in THEMES}, seed=8)
    started = time.perf_counter()
    irritants = find_irritants(texts, previous)
    print(
        f"\n{len(texts)} verbatims (+{len(previous)} previous): {time.perf_counter() - started:.2f} s, "
        f"{len(irritants)} topics: {[(i.label, i.size) for i in irritants]}"
    )
    assert irritants


def test_a_long_conversation_counts_once_as_one_contact():
    texts, _ = corpus({"delivery": 20, "card": 20, "refund": 20}, seed=11)
    contacts = [f"c{i}" for i in range(len(texts))]
    # One customer writes 300 messages about a late parcel: one contact, not 300 (nor four topics of 60).
    marathon = [phrasings("delivery", "en")[i % 50] + f" (message {i})" for i in range(300)]
    irritants = find_irritants(texts + marathon, contacts=contacts + ["marathon"] * 300, examples=len(texts) + 1)
    assert sum(i.size for i in irritants) <= len(texts) + 1 and max(i.size for i in irritants) <= 21
    # Its one example (its message closest to the topic) is in a single topic, about deliveries.
    holding = [i for i in irritants if any("(message " in e for e in i.examples)]
    assert len(holding) == 1 and RELATED_WORDS["delivery"] & set(holding[0].label.split(" · ")), holding
    assert sum("(message " in e for e in holding[0].examples) == 1
    # Counted per message, the same verbatims make the marathon outweigh every other topic.
    assert max(i.size for i in find_irritants(texts + marathon)) >= 300


def test_trend_counts_previous_contacts_too():
    current, _ = corpus({"card": 30, "refund": 30}, seed=12)
    previous = [phrasings("card", "fr")[i % 40] for i in range(60)]  # 60 messages from 3 contacts
    irritants = find_irritants(current, previous, previous_contacts=[f"p{i % 3}" for i in range(60)])
    card = next(i for i in irritants if RELATED_WORDS["card"] & set(i.label.split(" · ")))
    assert card.previous_size == 3 and card.trend == pytest.approx((card.size - 3) / 3)


def test_queue_commands_make_no_topic():
    commands = [
        "STOP",
        "stop",
        "Stop.",
        "annuler",
        "ANNULER svp",
        "CALLBACK",
        "callback please",
        "RAPPEL",
        "rappel merci",
        "quit",
        "leave the queue",
        "je veux quitter la file",
        "call me back",
        "bye",
        "au revoir",
    ]
    for text in commands:
        assert is_queue_command(text), text
    for text in (
        "cancel my subscription",
        "stop charging my card",
        "Bon, stop, j'abandonne, c'est trop long.",
        "my parcel is late",
        "",
        "[CARD]",
    ):
        assert not is_queue_command(text), text
    texts, _ = corpus({"delivery": 30, "card": 30}, seed=13)
    irritants = find_irritants(texts + commands * 4, contacts=[f"c{i}" for i in range(len(texts) + len(commands) * 4)])
    assert sum(i.size for i in irritants) <= len(texts)
    for irritant in irritants:
        assert not {"stop", "annuler", "callback", "rappel", "quit", "leave"} & set(irritant.terms), irritant
        assert not set(irritant.examples) & set(commands)


def test_a_topic_whose_words_give_no_label_is_labelled_by_its_verbatim():
    texts, _ = corpus({"delivery": 30, "card": 30}, seed=4)
    # Each misspelt once: under the word vocabulary's min_df, alike only by characters.
    typos = [
        "remboursment svp",
        "rembourssement !!",
        "remboursemnt??",
        "rembousement",
        "remboursemen",
        "rembourseement",
        "rembourcement",
    ]
    irritants = find_irritants(texts + typos)
    assert all(i.label.strip(" ·") and i.label != "?" for i in irritants)
    typo_topic = next(i for i in irritants if set(i.examples) <= set(typos))
    assert typo_topic.terms == () and typo_topic.label in typos


def test_short_label():
    assert short_label("my card is blocked") == "my card is blocked"
    long = "Bonjour, cela fait maintenant trois semaines que j'attends le remboursement de ma commande"
    assert short_label(long) == "Bonjour, cela fait maintenant trois semaines que…"
    assert len(short_label(long)) <= 49 and short_label("[CARD]  is   blocked") == "is blocked"
    assert short_label("x" * 80) == "x" * 48 + "…"
