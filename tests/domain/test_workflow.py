"""Case status moves: every pair of statuses, from a table written out by hand."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.domain.workflow import CaseStatus, IllegalMove, check_move

# Every move the workflow allows; everything else is refused.
LEGAL = {
    ("received", "triaged"),
    ("received", "closed"),
    ("triaged", "assigned"),
    ("triaged", "closed"),
    ("assigned", "triaged"),
    ("assigned", "closed"),
    ("closed", "triaged"),
}
STATUSES = ["received", "triaged", "assigned", "closed"]


@pytest.mark.parametrize("current", STATUSES)
@pytest.mark.parametrize("wanted", STATUSES)
def test_a_move_is_allowed_exactly_when_the_table_lists_it(current, wanted):
    if (current, wanted) in LEGAL:
        assert check_move(CaseStatus(current), CaseStatus(wanted), assigned_to="DC Example") is None
    else:
        with pytest.raises(IllegalMove):
            check_move(CaseStatus(current), CaseStatus(wanted), assigned_to="DC Example")


@pytest.mark.parametrize(
    ("current", "wanted", "message", "allowed"),
    [
        (
            "received",
            "assigned",
            "A received case can't become assigned; it can become: closed, triaged.",
            ["closed", "triaged"],
        ),
        ("closed", "received", "A closed case can't become received; it can become: triaged.", ["triaged"]),
        (
            "triaged",
            "triaged",
            "A triaged case can't become triaged; it can become: assigned, closed.",
            ["assigned", "closed"],
        ),
    ],
)
def test_an_illegal_move_names_the_moves_that_are_possible(current, wanted, message, allowed):
    with pytest.raises(IllegalMove) as refused:
        check_move(CaseStatus(current), CaseStatus(wanted), assigned_to=None)
    assert str(refused.value) == message
    assert refused.value.allowed == allowed


@pytest.mark.parametrize("assigned_to", [None, ""])
def test_assigning_needs_a_name(assigned_to):
    with pytest.raises(ValueError, match="Say who the case is assigned to.") as refused:
        check_move(CaseStatus.triaged, CaseStatus.assigned, assigned_to=assigned_to)
    assert not isinstance(refused.value, IllegalMove)  # a missing name, not an impossible move


@pytest.mark.parametrize(("current", "wanted"), [move for move in sorted(LEGAL) if move[1] != "assigned"])
def test_only_assigning_needs_a_name(current, wanted):
    assert check_move(CaseStatus(current), CaseStatus(wanted), assigned_to=None) is None


@given(st.sampled_from(CaseStatus), st.sampled_from(CaseStatus), st.one_of(st.none(), st.text(max_size=20)))
def test_the_only_way_into_received_is_to_be_reported(current, wanted, assigned_to):
    moved = True
    try:
        check_move(current, wanted, assigned_to)
    except ValueError:
        moved = False
    if wanted is CaseStatus.received:
        assert not moved
    assert moved == (
        (current.value, wanted.value) in LEGAL and (wanted is not CaseStatus.assigned or bool(assigned_to))
    )
