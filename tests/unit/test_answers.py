"""Answer formatting, in French and English."""

from datetime import date

from relais.bot import answers


def test_money_is_formatted_per_language():
    assert answers._money("fr", 123456, "EUR") == "1 234,56 €"
    assert answers._money("en", 123456, "GBP") == "£1,234.56"
    assert answers._money("fr", -2550, "EUR") == "-25,50 €"
    assert answers._money("en", 500, "CHF") == "5.00 CHF"


def test_dates_per_language():
    assert answers._date("fr", date(2026, 12, 2)) == "02/12/2026"
    assert answers._date("en", date(2026, 12, 2)) == "02 December 2026"


def test_order_numbers_are_found_in_free_text():
    assert answers.ORDER_ID.search("ma commande cmd 123456 svp").group(1) == "123456"
    assert answers.ORDER_ID.search("order CMD-654321?").group(1) == "654321"
    assert answers.ORDER_ID.search("I ordered 3 items") is None
