"""Language detection (relais.common.language) on short customer messages in the languages we name.

The table was written for this test, apart from the markers and thresholds in the module: 22 messages
per language, in the words customers use (greetings, orders with numbers, cards, refunds, complaints),
half of them 2-5 words. What must hold:

- a message in an unserved language (es, de, it, pt, nl) is never taken *for sure* as French or
  English (the failure seen: Spanish handled as French, German as English); it is recognised as its
  own language, or at worst marked unsure and answered in French and English;
- a French or English message keeps its language (it is never routed as Spanish or German).
"""

import csv
from pathlib import Path

import pytest

from relais.common.language import (
    DEFAULT_LANGUAGE,
    DETECTED_LANGUAGES,
    SUPPORTED_LANGUAGES,
    LanguageGuess,
    declared_language,
    detect_language,
    guess_language,
    supported_language,
)

MESSAGES = {
    "fr": [
        "Bonjour, où en est ma commande ?",
        "ma commande CMD-123456 n'est pas arrivée",
        "Je voudrais parler à un conseiller",
        "merci beaucoup",
        "toujours rien reçu",
        "Quels sont vos horaires ?",
        "je n'arrive pas à me connecter",
        "Où est mon colis CMD-778812 ?",
        "Pouvez-vous me rembourser svp",
        "carte bloquée",
        "j'ai été débité deux fois",
        "C'est inadmissible, ça fait trois semaines !",
        "quel est le solde de mon compte",
        "je veux résilier mon abonnement",
        "d'accord, merci",
        "Le livreur n'est jamais passé",
        "changer mon adresse de livraison",
        "commande CMD-445566 annulée ?",
        "vous êtes ouverts dimanche ?",
        "J'ai perdu ma carte bancaire hier soir",
        "toujours pas de nouvelles de CMD-300211",
        "rappelez-moi demain matin",
    ],
    "en": [
        "Hi, where is my order?",
        "my order CMD-123456 hasn't arrived",
        "I want to talk to a real person",
        "thanks a lot",
        "still nothing received",
        "What are your opening hours?",
        "I can't log in",
        "Where is my parcel CMD-778812?",
        "Can you refund me please",
        "card blocked",
        "I was charged twice",
        "This is unacceptable, it has been three weeks!",
        "what is my account balance",
        "I want to cancel my subscription",
        "ok thanks",
        "The courier never came",
        "change my delivery address",
        "order CMD-445566 cancelled?",
        "are you open on Sunday?",
        "I lost my bank card last night",
        "still no news about CMD-300211",
        "call me back tomorrow morning",
    ],
    "es": [
        "Hola, ¿dónde está mi pedido?",
        "mi pedido CMD-123456 no ha llegado",
        "Quiero hablar con una persona",
        "muchas gracias",
        "todavía no he recibido nada",
        "¿Cuál es su horario de apertura?",
        "no puedo iniciar sesión",
        "¿Dónde está mi paquete CMD-778812?",
        "¿Me pueden devolver el dinero, por favor?",
        "tarjeta bloqueada",
        "me cobraron dos veces",
        "Esto es inaceptable, ya van tres semanas",
        "cuál es el saldo de mi cuenta",
        "quiero cancelar mi suscripción",
        "vale, gracias",
        "El repartidor nunca vino",
        "cambiar mi dirección de entrega",
        "¿pedido CMD-445566 cancelado?",
        "¿están abiertos el domingo?",
        "Perdí mi tarjeta del banco anoche",
        "sigo sin noticias de CMD-300211",
        "llámenme mañana por la mañana",
    ],
    "de": [
        "Hallo, wo ist meine Bestellung?",
        "meine Bestellung CMD-123456 ist nicht angekommen",
        "Ich möchte mit einem Menschen sprechen",
        "vielen Dank",
        "immer noch nichts bekommen",
        "Wie sind Ihre Öffnungszeiten?",
        "ich kann mich nicht anmelden",
        "Wo ist mein Paket CMD-778812?",
        "Können Sie mir das Geld zurückerstatten?",
        "Karte gesperrt",
        "mir wurde doppelt abgebucht",
        "Das ist inakzeptabel, seit drei Wochen warte ich!",
        "wie hoch ist mein Kontostand",
        "ich will mein Abo kündigen",
        "okay, danke",
        "Der Paketbote ist nie gekommen",
        "Lieferadresse ändern",
        "Bestellung CMD-445566 storniert?",
        "haben Sie am Sonntag geöffnet?",
        "Ich habe gestern Abend meine Bankkarte verloren",
        "immer noch keine Nachricht zu CMD-300211",
        "rufen Sie mich morgen früh zurück",
    ],
    "it": [
        "Ciao, dov'è il mio ordine?",
        "il mio ordine CMD-123456 non è arrivato",
        "Vorrei parlare con un operatore",
        "grazie mille",
        "non ho ancora ricevuto niente",
        "Quali sono i vostri orari di apertura?",
        "non riesco ad accedere",
        "Dov'è il mio pacco CMD-778812?",
        "Potete rimborsarmi per favore",
        "carta bloccata",
        "mi avete addebitato due volte",
        "È inaccettabile, sono già tre settimane!",
        "qual è il saldo del mio conto",
        "voglio disdire il mio abbonamento",
        "va bene, grazie",
        "Il corriere non è mai passato",
        "cambiare indirizzo di consegna",
        "ordine CMD-445566 annullato?",
        "siete aperti domenica?",
        "Ho perso la mia carta ieri sera",
        "ancora nessuna notizia di CMD-300211",
        "richiamatemi domani mattina",
    ],
    "pt": [
        "Olá, onde está a minha encomenda?",
        "a minha encomenda CMD-123456 não chegou",
        "Quero falar com uma pessoa",
        "muito obrigado",
        "ainda não recebi nada",
        "Qual é o vosso horário de funcionamento?",
        "não consigo entrar na minha conta",
        "Onde está o meu pacote CMD-778812?",
        "Podem devolver-me o dinheiro, por favor?",
        "cartão bloqueado",
        "fui cobrado duas vezes",
        "Isto é inaceitável, já lá vão três semanas!",
        "qual é o saldo da minha conta",
        "quero cancelar a minha assinatura",
        "está bem, obrigada",
        "O estafeta nunca apareceu",
        "mudar o meu endereço de entrega",
        "encomenda CMD-445566 cancelada?",
        "vocês abrem no domingo?",
        "Perdi o meu cartão ontem à noite",
        "meu pedido CMD-300211 ainda não chegou",
        "liguem-me amanhã de manhã",
    ],
    "nl": [
        "Hallo, waar is mijn bestelling?",
        "mijn bestelling CMD-123456 is niet aangekomen",
        "Ik wil met een medewerker praten",
        "hartelijk bedankt",
        "nog steeds niets ontvangen",
        "Wat zijn jullie openingstijden?",
        "ik kan niet inloggen",
        "Waar is mijn pakket CMD-778812?",
        "Kunnen jullie mij terugbetalen alstublieft",
        "pas geblokkeerd",
        "er is twee keer afgeschreven",
        "Dit is onacceptabel, het duurt al drie weken!",
        "wat is het saldo van mijn rekening",
        "ik wil mijn abonnement opzeggen",
        "oké, dank je",
        "De bezorger is nooit langsgekomen",
        "mijn bezorgadres wijzigen",
        "bestelling CMD-445566 geannuleerd?",
        "zijn jullie zondag open?",
        "Ik ben gisteravond mijn bankpas kwijtgeraakt",
        "nog steeds geen nieuws over CMD-300211",
        "bel me morgenochtend terug",
    ],
}
# Written after the thresholds were set, and never tuned on: how detection does on new phrasings.
HELD_OUT = {
    "es": [
        "necesito cambiar mi contraseña",
        "el paquete llegó roto",
        "¿puedo devolver estos zapatos?",
        "no me llega el correo de confirmación",
        "quiero una factura",
        "hace una semana que espero",
        "mi tarjeta fue rechazada",
        "pedido CMD-901234 incompleto",
        "¿cuánto tarda el envío a Sevilla?",
        "buenas tardes, tengo un problema",
        "me falta un artículo",
        "actualizar mi número de teléfono",
        "el descuento no se aplicó",
        "¿hay alguien ahí?",
        "estoy muy enfadado con ustedes",
    ],
    "de": [
        "ich muss mein Passwort ändern",
        "das Paket kam beschädigt an",
        "kann ich diese Schuhe zurückschicken?",
        "die Bestätigungsmail kommt nicht",
        "ich brauche eine Rechnung",
        "ich warte seit einer Woche",
        "meine Karte wurde abgelehnt",
        "Bestellung CMD-901234 unvollständig",
        "wie lange dauert der Versand nach Köln?",
        "guten Tag, ich habe ein Problem",
        "mir fehlt ein Artikel",
        "meine Telefonnummer aktualisieren",
        "der Rabatt wurde nicht abgezogen",
        "ist da jemand?",
        "ich bin sehr verärgert",
    ],
    "it": [
        "devo cambiare la password",
        "il pacco è arrivato rotto",
        "posso restituire queste scarpe?",
        "non ricevo l'email di conferma",
        "mi serve una fattura",
        "aspetto da una settimana",
        "la mia carta è stata rifiutata",
        "ordine CMD-901234 incompleto",
        "quanto ci vuole per la spedizione a Napoli?",
        "buonasera, ho un problema",
        "mi manca un articolo",
        "aggiornare il mio numero di telefono",
        "lo sconto non è stato applicato",
        "c'è qualcuno?",
        "sono molto arrabbiato con voi",
    ],
    "pt": [
        "preciso de mudar a minha palavra-passe",
        "a encomenda chegou partida",
        "posso devolver estes sapatos?",
        "não recebo o email de confirmação",
        "preciso de uma fatura",
        "estou à espera há uma semana",
        "o meu cartão foi recusado",
        "encomenda CMD-901234 incompleta",
        "quanto tempo demora o envio para o Porto?",
        "boa tarde, tenho um problema",
        "falta-me um artigo",
        "atualizar o meu número de telemóvel",
        "o desconto não foi aplicado",
        "está aí alguém?",
        "estou muito chateado convosco",
    ],
    "nl": [
        "ik moet mijn wachtwoord wijzigen",
        "het pakket kwam beschadigd aan",
        "kan ik deze schoenen terugsturen?",
        "de bevestigingsmail komt niet",
        "ik heb een factuur nodig",
        "ik wacht al een week",
        "mijn kaart werd geweigerd",
        "bestelling CMD-901234 onvolledig",
        "hoe lang duurt de verzending naar Gent?",
        "goedemiddag, ik heb een probleem",
        "er ontbreekt een artikel",
        "mijn telefoonnummer bijwerken",
        "de korting is niet verwerkt",
        "is daar iemand?",
        "ik ben erg boos op jullie",
    ],
}
UNSERVED = [lang for lang in DETECTED_LANGUAGES if lang not in SUPPORTED_LANGUAGES]
CASES = [(lang, text) for lang, texts in MESSAGES.items() for text in texts]


def _words(text: str) -> int:
    return len([w for w in text.split() if any(c.isalpha() for c in w)])


def test_the_table_covers_every_language_with_short_messages_and_order_numbers():
    assert set(MESSAGES) == set(DETECTED_LANGUAGES)
    for lang, texts in MESSAGES.items():
        assert len(texts) >= 15 and len(set(texts)) == len(texts), lang
        assert sum(2 <= _words(t) <= 5 for t in texts) >= 10, lang
        assert sum("CMD-" in t for t in texts) >= 4, lang


def _guesses(lang: str) -> list[LanguageGuess]:
    return [guess_language(text) for text in MESSAGES[lang]]


@pytest.mark.parametrize("lang", UNSERVED)
def test_an_unserved_language_is_never_taken_for_sure_as_another(lang):
    wrong = [(t, g) for t, g in zip(MESSAGES[lang], _guesses(lang)) if g.sure and g.language != lang]
    assert not wrong


@pytest.mark.parametrize("lang", UNSERVED)
def test_an_unserved_language_is_recognised(lang):
    guesses = _guesses(lang)
    right = [g.language == lang and g.sure for g in guesses]
    # The rest are marked unsure (answered in French and English), never silently wrong (test above).
    assert sum(right) / len(right) >= 0.9, [(t, g) for t, g, ok in zip(MESSAGES[lang], guesses, right) if not ok]


@pytest.mark.parametrize("lang", SUPPORTED_LANGUAGES)
def test_french_and_english_keep_their_language(lang):
    guesses = _guesses(lang)
    assert [(t, g) for t, g in zip(MESSAGES[lang], guesses) if g.language != lang] == []
    unsure = [(t, g) for t, g in zip(MESSAGES[lang], guesses) if not g.sure]
    assert len(unsure) <= 1, unsure  # a served message answered in both languages now and then is tolerable


@pytest.mark.parametrize("lang", UNSERVED)
def test_new_phrasings_in_an_unserved_language(lang):
    guesses = [(text, guess_language(text)) for text in HELD_OUT[lang]]
    assert [(t, g) for t, g in guesses if g.sure and g.language != lang] == []
    # Measured: 73 of 75, the other two unsure ("pedido ... incompleto": es or pt; "ist da jemand?": de or nl).
    assert sum(g.sure and g.language == lang for _, g in guesses) >= len(guesses) - 2, guesses


def test_overall_accuracy_on_the_table():
    correct = sum(guess_language(text).language == lang for lang, text in CASES)
    assert correct / len(CASES) >= 0.95


EVALUATION_SET = Path(__file__).parents[1] / "classifier" / "evaluation_set.csv"


def test_french_and_english_customer_messages_of_the_evaluation_set_stay_served():
    """349 real-looking fr/en messages written for the classifier: none may be sent to a Spanish desk."""
    with EVALUATION_SET.open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    guesses = [(row["text"], row["language"], guess_language(row["text"])) for row in rows]
    unserved = [(t, g) for t, _, g in guesses if g.language not in SUPPORTED_LANGUAGES]
    assert unserved == []
    wrong = [(t, lang, g) for t, lang, g in guesses if g.language != lang]
    assert len(wrong) / len(rows) <= 0.01, wrong  # measured: 0
    unsure = [(t, g) for t, _, g in guesses if not g.sure]
    assert len(unsure) / len(rows) <= 0.04, unsure  # measured: 6 of 349 ("operator", "human", "paypal ok?")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("hola", "es"),
        ("gracias", "es"),
        ("danke", "de"),
        ("hallo danke", "de"),
        ("grazie", "it"),
        ("ciao", "it"),
        ("obrigado", "pt"),
        ("bedankt", "nl"),
        ("merci", "fr"),
        ("svp", "fr"),
        ("thanks", "en"),
        ("ok merci", "fr"),
        ("ok thanks", "en"),
        ("d'accord", "fr"),
        # What customers write to us about, in one language only
        ("order CMD-123456", "en"),
        ("commande", "fr"),
        ("Bestellung CMD-1234", "de"),
        ("pacco", "it"),
        ("encomenda", "pt"),
        ("pakket", "nl"),
        ("tarjeta", "es"),
    ],
)
def test_greetings_thanks_and_our_words(text, expected):
    assert guess_language(text) == LanguageGuess(expected)


@pytest.mark.parametrize("text", ["taxi", "Hotel", "problema", "pedido", "saldo", "no", "ja", "si", "non", "hallo"])
def test_a_word_of_several_languages_is_unsure_and_falls_back_to_a_served_language(text):
    guess = guess_language(text)
    assert not guess.sure and guess.language in SUPPORTED_LANGUAGES and guess.ambiguous_with in UNSERVED


@pytest.mark.parametrize("text", ["ok", "okay", "CMD-123456 ok", "email ?"])
def test_words_of_every_language_say_nothing(text):
    assert guess_language(text) == LanguageGuess(DEFAULT_LANGUAGE, sure=False)


def test_the_declared_language_wins():
    assert guess_language("Hello, where is my order?", hint="fr") == LanguageGuess("fr")
    assert guess_language("Bonjour", hint="en-GB") == LanguageGuess("en")
    assert guess_language("Bonjour, où est ma commande ?", hint="es") == LanguageGuess("es")
    assert guess_language("Where is my order?", hint="pl") == LanguageGuess("pl")  # declared, even undetectable
    assert detect_language("Hola, ¿dónde está mi pedido?", hint="und") == "es"  # "undetermined" declares nothing


def test_no_words_is_the_default_language_unsure():
    for text in ("", "   ", "CMD-123456 ???", "12345"):
        assert guess_language(text) == LanguageGuess(DEFAULT_LANGUAGE, sure=False)


def test_declared_codes():
    assert [declared_language(c) for c in ("es", "FR", "fr-CA", "en_GB", "", None, "und", "x1")] == [
        "es",
        "fr",
        "fr",
        "en",
        None,
        None,
        None,
        None,
    ]
    assert [supported_language(c) for c in ("fr-CA", "EN", "es", None)] == ["fr", "en", None, None]


@pytest.mark.parametrize(
    ("text", "previous", "expected"),
    [
        ("pizza", "fr", "fr"),
        ("ciao", "fr", "fr"),
        ("danke", "en", "en"),
        ("merci", "en", "en"),
        ("ok", "es", "es"),
        ("CMD-123456", "de", "de"),
        ("ja", "de", "de"),
        ("si", "es", "es"),
        ("taxi", "it", "it"),
    ],
)
def test_a_later_message_too_short_to_tell_stays_in_the_conversations_language(text, previous, expected):
    assert guess_language(text, previous=previous).language == expected


@pytest.mark.parametrize("previous", ["fr", "en", "es", "de"])
def test_a_customer_who_changes_language_is_followed(previous):
    """The table again, each message as a later one of a conversation in another language."""
    followed = [guess_language(text, previous=previous).language == lang for lang, text in CASES]
    assert sum(followed) / len(followed) >= 0.95  # measured: 150-152 of 154
    assert guess_language("Hola, ¿hablan español?", previous="fr") == LanguageGuess("es")
    assert guess_language("Where is my order?", hint="es", previous="fr") == LanguageGuess("es")


def test_declared_languages_never_load_the_detector(monkeypatch):
    """The classifier reads turns whose language intake already set: the detector's ~200 MB stay unloaded."""
    from relais.common import language

    def no_detector():
        raise AssertionError("the detector was asked for")

    monkeypatch.setattr(language, "_language_detector", no_detector)
    guesses = language.guess_languages([("Bonjour, où en est ma commande ?", "fr", None), ("Hi there", "en-GB", None)])
    assert [g.language for g in guesses] == ["fr", "en"]
    assert language.detect_language("Where is my order?", "en") == "en"
    with pytest.raises(AssertionError, match="asked for"):
        language.detect_language("Where is my parcel, it should have arrived", None)
