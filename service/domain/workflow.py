"""How a case moves: received -> triaged -> assigned -> closed, and back when that is right."""

from __future__ import annotations

from enum import StrEnum


class CaseStatus(StrEnum):
    received = "received"
    triaged = "triaged"
    assigned = "assigned"
    closed = "closed"


# Closing is possible from any open state (a duplicate needs no triage); a closed case reopens to
# triage; an assigned case can go back to triage when its analyst hands it back.
ALLOWED_MOVES: dict[CaseStatus, frozenset[CaseStatus]] = {
    CaseStatus.received: frozenset({CaseStatus.triaged, CaseStatus.closed}),
    CaseStatus.triaged: frozenset({CaseStatus.assigned, CaseStatus.closed}),
    CaseStatus.assigned: frozenset({CaseStatus.triaged, CaseStatus.closed}),
    CaseStatus.closed: frozenset({CaseStatus.triaged}),
}


class IllegalMove(ValueError):
    def __init__(self, current: CaseStatus, wanted: CaseStatus) -> None:
        self.allowed = sorted(ALLOWED_MOVES[current])
        names = ", ".join(status.value for status in self.allowed)
        super().__init__(f"A {current.value} case can't become {wanted.value}; it can become: {names}.")


def check_move(current: CaseStatus, wanted: CaseStatus, assigned_to: str | None) -> None:
    """Raise IllegalMove, or ValueError for a move that lacks what it needs."""
    if wanted not in ALLOWED_MOVES[current]:
        raise IllegalMove(current, wanted)
    if wanted is CaseStatus.assigned and not assigned_to:
        raise ValueError("Say who the case is assigned to.")
