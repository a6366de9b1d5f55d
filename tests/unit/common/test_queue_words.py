"""One vocabulary of queue commands (relais.common.queue_words), two questions: routing reads a customer's choice
in a message, a command inside a sentence included; analytics leaves a message that is only a command out of the
irritants."""

import pytest

from relais.analytics.irritants import _tokens, is_queue_command
from relais.common.queue_words import CALLBACK_COMMANDS, FAREWELLS, LEAVE_COMMANDS
from relais.routing.rules import customer_choice

EVERY_COMMAND = [(c, "leave") for c in sorted(LEAVE_COMMANDS | FAREWELLS)] + [
    (c, "callback") for c in sorted(CALLBACK_COMMANDS)
]


@pytest.mark.parametrize("command,choice", EVERY_COMMAND)
def test_every_command_is_a_choice_for_routing_and_no_irritant_for_analytics(command, choice):
    assert customer_choice(command) == choice
    assert customer_choice(command.upper() + " !") == choice
    # Made only of stop words ("i give up", "see you"), a command has no topic word to leave out.
    assert is_queue_command(command) or not _tokens(command)


@pytest.mark.parametrize(
    "text,choice,only_a_command",
    [
        ("STOP", "leave", True),
        ("je veux quitter la file", "leave", True),
        ("Bon, stop, j'abandonne, c'est trop long.", "leave", False),  # a complaint around the command
        ("Rappelez-moi, mon colis n'est jamais arrivé", "callback", False),
        ("ma demande ?", None, False),  # what a command is about is no command alone
        ("stop charging my card", None, False),
    ],
)
def test_the_two_questions_differ_on_a_command_inside_a_sentence(text, choice, only_a_command):
    assert customer_choice(text) == choice
    assert is_queue_command(text) is only_a_command
