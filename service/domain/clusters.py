"""Offender networks: cases joined by shared identifiers or matching images, and the harm they add up to.

A cluster is a connected component of the graph whose nodes are cases and whose edges are links
(a shared normalised identifier, a matching image). Each victim is one case; a case marked as a
duplicate of another is the same victim and is not counted twice.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation

# ISO 4217's code for "no currency": what an amount given without one is totalled under.
NO_CURRENCY = "XXX"


def money_paid(payments: Iterable[dict]) -> dict[str, str]:
    """Amounts paid per currency, as decimal strings (money is never a float)."""
    totals: dict[str, Decimal] = {}
    for payment in payments:
        amount = payment.get("amount")
        if amount in (None, ""):
            continue
        try:
            value = Decimal(str(amount))
        except InvalidOperation:
            continue
        currency = (payment.get("currency") or NO_CURRENCY).upper()
        totals[currency] = totals.get(currency, Decimal(0)) + value
    return {currency: str(total) for currency, total in sorted(totals.items())}


def add_money(totals: dict[str, Decimal], more: dict[str, str]) -> None:
    for currency, amount in more.items():
        totals[currency] = totals.get(currency, Decimal(0)) + Decimal(amount)


def money_sum(*amounts: dict[str, str]) -> dict[str, str]:
    totals: dict[str, Decimal] = {}
    for more in amounts:
        add_money(totals, more)
    return {currency: str(total) for currency, total in sorted(totals.items())}


@dataclass
class ClusterTotals:
    """What a cluster (or the part of it in one police force) adds up to. Kept with the cluster and
    changed in the transaction that changes its cases, so a list of clusters reads a page of clusters,
    never every case in them. A duplicate case is a case, not another victim or another payment."""

    cases: int = 0
    victims: int = 0
    child_victims: int = 0
    money: dict[str, str] = field(default_factory=dict)
    first_seen: datetime | None = None
    last_seen: datetime | None = None

    @classmethod
    def of_case(cls, *, child_victim: bool, money: dict[str, str], reported_at: datetime, duplicate: bool):
        counted = not duplicate
        return cls(
            cases=1,
            victims=int(counted),
            child_victims=int(counted and child_victim),
            money=dict(money) if counted else {},
            first_seen=reported_at,
            last_seen=reported_at,
        )

    def add(self, other: ClusterTotals) -> None:
        self.cases += other.cases
        self.victims += other.victims
        self.child_victims += other.child_victims
        self.money = money_sum(self.money, other.money)
        seen = [when for when in (self.first_seen, other.first_seen) if when is not None]
        self.first_seen = min(seen) if seen else None
        seen = [when for when in (self.last_seen, other.last_seen) if when is not None]
        self.last_seen = max(seen) if seen else None


def connected_components(nodes: Iterable[int], edges: Iterable[tuple[int, int]]) -> list[set[int]]:
    """Union-find with path halving: every node in exactly one component."""
    parent = {node: node for node in nodes}

    def root(node: int) -> int:
        while parent[node] != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    for a, b in edges:
        if a in parent and b in parent:
            ra, rb = root(a), root(b)
            if ra != rb:
                parent[max(ra, rb)] = min(ra, rb)
    components: dict[int, set[int]] = {}
    for node in parent:
        components.setdefault(root(node), set()).add(node)
    return list(components.values())


@dataclass(frozen=True)
class ClusterAlertPolicy:
    """When a case joining a cluster is worth waking someone for."""

    min_victims: int = 5

    def is_due(self, *, victims: int, child_victims: int) -> bool:
        return child_victims > 0 or victims >= self.min_victims


SORTS = ("harm", "victims", "last_seen", "first_seen")
