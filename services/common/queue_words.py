"""The queue's vocabulary: how a waiting customer answers the queue message ("Reply STOP to leave the queue, or
CALLBACK to be called back instead"), in French and English, folded (lower case, no accents, straight apostrophe).

One vocabulary, two questions: routing reads a choice in a message, a command inside a sentence included
(relais.routing.rules.customer_choice); analytics leaves a message that is only a command out of the irritants
(relais.analytics.irritants.is_queue_command).
"""

# Words around a command that change nothing ("bon, stop svp").
FILLER = frozenset(
    {
        "bon",
        "ben",
        "bah",
        "ah",
        "oh",
        "eh",
        "euh",
        "hum",
        "alors",
        "donc",
        "bref",
        "ok",
        "okay",
        "well",
        "so",
        "then",
        "please",
        "pls",
        "plz",
        "svp",
        "stp",
        "s'il vous plait",
        "s'il te plait",
        "now",
        "maintenant",
        "merci",
        "thanks",
        "thank you",
        "oui",
        "yes",
        "non",
        "no",
        "enfin",
        "voila",
        "right",
        "just",
        "juste",
        "hey",
        "re",
        "allez",
        "come on",
        "again",
        "encore",
        "vraiment",
        "really",
        "bien",
        "tout de suite",
        "right now",
    }
)
# Each, said alone give or take filler words, is the command.
LEAVE_COMMANDS = frozenset(
    {
        "stop",
        "quit",
        "leave",
        "cancel",
        "exit",
        "end",
        "annuler",
        "annule",
        "annulez",
        "quitter",
        "quitte",
        "quittez",
        "arret",
        "arrete",
        "arretez",
        "arreter",
        "abandon",
        "abandonner",
        "fin",
        "terminer",
        "termine",
        "stop waiting",
        "stop the wait",
        "unsubscribe",
        "je pars",
        "je quitte",
        "j'abandonne",
        "i quit",
        "i give up",
        "cancel my request",
        "annuler ma demande",
        "leave the queue",
        "quitter la file",
        "sortir de la file",
    }
)
CALLBACK_COMMANDS = frozenset(
    {
        "callback",
        "call back",
        "call-back",
        "call me back",
        "call me",
        "me rappeler",
        "rappel",
        "rappelez moi",
        "rappelez-moi",
        "rappel telephonique",
        "un rappel",
        "rappelle moi",
        "rappelle-moi",
    }
)
FAREWELLS = frozenset(
    {"bye", "bye bye", "goodbye", "good bye", "ciao", "au revoir", "a bientot", "a plus", "see you", "see ya"}
)
# What the commands are about (the queue, the request): beside a command they change nothing, alone they are none.
QUEUE_WORDS = frozenset({"queue", "file", "line", "attente", "wait", "waiting", "demande", "request"})
