"""Export cells that a spreadsheet would run as formulas are neutralised; nothing else changes."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.domain.export import spreadsheet_safe


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        (None, ""),
        (True, "true"),
        (False, "false"),
        (0, "0"),
        (-5, "'-5"),  # a negative number starts with a minus, which a spreadsheet also reads as a formula
        ("plain", "plain"),
        ("=1+1", "'=1+1"),
        ("+44 7911 123456", "'+44 7911 123456"),
        ("-", "'-"),
        ("@SUM(1)", "'@SUM(1)"),
        ("\tcmd", "'\tcmd"),
        ("\rcmd", "'\rcmd"),
        ("a=1", "a=1"),
        (" =1", " =1"),
        ("'quoted", "'quoted"),
        ("", ""),
    ],
)
def test_spreadsheet_safe_quotes_only_what_would_be_a_formula(value, cell):
    assert spreadsheet_safe(value) == cell


@given(st.text())
def test_a_safe_cell_is_the_text_itself_or_the_text_behind_one_quote(text):
    cell = spreadsheet_safe(text)
    assert not cell.startswith(("=", "+", "-", "@", "\t", "\r"))
    assert cell in (text, "'" + text)
