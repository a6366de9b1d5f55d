"""Everything routing says to customers and shows agents, in French and English, in one place: each text a
{language: text} table, and `say` to write one in the customer's language (English then French when we have no
texts in theirs)."""

from datetime import datetime, timedelta, tzinfo

from relais.common.lookup_words import DAYS, MONTHS
from relais.routing import rules

# What waiting customers read.
QUEUE_TEXT = {
    "fr": "Un conseiller va vous répondre. Vous êtes en position {position} ; attente estimée : {minutes} min.",
    "en": "An advisor will be with you shortly. You are number {position} in the queue; estimated wait: {minutes} min.",
}
NOBODY_TEXT = {  # nobody who could take the request is signed in: no wait can be promised
    "fr": "Aucun conseiller n'est disponible pour votre demande en ce moment : nous ne pouvons pas vous annoncer de délai."
    " Vous gardez votre place dans la file.",
    "en": "No advisor is available for your request right now, so we cannot tell you how long it will take."
    " You keep your place in the queue.",
}
CLOSED_TEXT = {
    "fr": "Notre centre est fermé en ce moment ; il rouvre {opens}. Vous gardez votre place dans la file.",
    "en": "Our contact center is closed right now; it opens again {opens}. You keep your place in the queue.",
}
CHOICES_TEXT = {
    "fr": " Répondez STOP pour quitter la file{callback}.",
    "en": " Reply STOP to leave the queue{callback}.",
}
CALLBACK_OFFER = {"fr": ", ou RAPPEL pour être rappelé", "en": ", or CALLBACK to be called back instead"}
LEFT_TEXT = {"fr": "Vous avez quitté la file d'attente. À bientôt.", "en": "You have left the queue. Goodbye."}
CALLBACK_TEXT = {
    "fr": "C'est noté : un conseiller vous rappellera {at}.",
    "en": "Done: an advisor will call you back {at}.",
}
CALLBACK_SOON_TEXT = {
    "fr": "C'est noté : un conseiller vous rappellera dès que l'un d'eux sera disponible.",
    "en": "Done: an advisor will call you back as soon as one is available.",
}
PHONE_TEXT = {
    "fr": "À quel numéro pouvons-nous vous rappeler ? Vous gardez votre place dans la file en attendant.",
    "en": "Which number should we call you back on? You keep your place in the queue meanwhile.",
}
GOODBYE_TEXT = {"fr": "Merci à vous, bonne journée !", "en": "Thank you, have a nice day!"}
REQUEUED = {  # to a customer whose advisor left: (signed out, disconnected)
    "fr": (
        "Votre conseiller a dû s'absenter ; vous êtes de nouveau en file, en priorité.",
        "Votre conseiller a été déconnecté ; vous êtes de nouveau en file, en priorité.",
    ),
    "en": (
        "Your advisor had to leave; you are back in the queue, ahead of new requests.",
        "Your advisor was disconnected; you are back in the queue, ahead of new requests.",
    ),
}

# What agents read in a transcript where lines were left out (transcript_view).
GAP = {
    "fr": ("… {n} message plus ancien …", "… {n} messages plus anciens …"),
    "en": ("… {n} earlier message …", "… {n} earlier messages …"),
}


def say(language: str, *parts) -> str:
    """A message in the customer's language, or in English then French when we have no texts in theirs. Each part is
    a {language: text} table, or (table, fields) where a field may be a function of the language."""
    said = []
    for lang in rules.text_languages(language, ("fr", "en")):
        text = ""
        for part in parts:
            table, fields = part if isinstance(part, tuple) else (part, {})
            text += table[lang].format(**{k: v(lang) if callable(v) else v for k, v in fields.items()})
        said.append(text)
    return "\n".join(said)


def requeued_notice(language: str, signed_out: bool) -> str:
    return REQUEUED.get(language[:2].lower(), REQUEUED["en"])[0 if signed_out else 1]


# A time as customers read it, in their time zone.
AT_CLOCK = {"fr": "à {clock}", "en": "at {clock}"}
TOMORROW_AT_CLOCK = {"fr": "demain à {clock}", "en": "tomorrow at {clock}"}
ON_DAY_AT_CLOCK = {"fr": "{weekday} {day} {month} à {clock}", "en": "on {weekday} {day} {month} at {clock}"}


def spoken_time(at: datetime, zone: tzinfo, language: str, now: datetime) -> str:
    """ "à 15:42 (Europe/Paris)", "demain à 09:00 (...)", "lundi 8 décembre à 09:00 (...)" in the customer's zone."""
    language = language if language in AT_CLOCK else "en"
    local, today = at.astimezone(zone), now.astimezone(zone).date()
    clock = local.strftime("%H:%M")
    if local.date() == today:
        when = AT_CLOCK[language].format(clock=clock)
    elif local.date() == today + timedelta(days=1):
        when = TOMORROW_AT_CLOCK[language].format(clock=clock)
    else:
        weekday, month = DAYS[language][local.weekday()], MONTHS[language][local.month - 1]
        when = ON_DAY_AT_CLOCK[language].format(weekday=weekday, day=local.day, month=month, clock=clock)
    label = getattr(zone, "key", None) or ("UTC" + local.strftime("%z")[:3] + ":" + local.strftime("%z")[3:])
    return f"{when} ({label})"
