"""Cluster arithmetic: money per currency, connected components, when a join is worth an alert."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from service.domain.clusters import ClusterAlertPolicy, connected_components, money_paid


def test_money_is_totalled_per_currency_as_exact_decimals():
    payments = [
        {"amount": "100.10", "currency": "gbp"},
        {"amount": "0.20", "currency": "GBP"},
        {"amount": "50", "currency": "USD"},
        {"amount": "12"},
        {"currency": "EUR"},
        {"amount": "", "currency": "EUR"},
    ]
    assert money_paid(payments) == {"GBP": "100.30", "USD": "50", "XXX": "12"}
    assert money_paid([]) == {}


def test_components_are_what_the_links_join():
    components = connected_components(range(1, 8), [(1, 2), (2, 3), (5, 6), (3, 1), (9, 1)])
    assert sorted(sorted(component) for component in components) == [[1, 2, 3], [4], [5, 6], [7]]


@given(st.integers(1, 40), st.randoms(use_true_random=False))
def test_every_node_is_in_one_component_and_every_link_within_one(size, rng: random.Random):
    edges = [(rng.randrange(size), rng.randrange(size)) for _ in range(rng.randrange(size * 2))]
    components = connected_components(range(size), edges)
    where = {node: index for index, component in enumerate(components) for node in component}
    assert sorted(where) == list(range(size))
    assert all(where[a] == where[b] for a, b in edges)


def test_a_child_victim_or_enough_victims_make_a_join_urgent():
    policy = ClusterAlertPolicy(min_victims=5)
    assert policy.is_due(victims=2, child_victims=1)
    assert policy.is_due(victims=5, child_victims=0)
    assert not policy.is_due(victims=4, child_victims=0)
