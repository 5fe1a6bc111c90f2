"""STIX 2.1 sharing: each identifier type becomes the observable a partner expects, once per bundle."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.domain.sharing import TLP_MARKING_IDS, SharedCase, SharedIdentifier, observable, stix_bundle

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
AMBER = TLP_MARKING_IDS["amber"]


def identifier(kind: str, normalized: str, platform: str | None = None, handle: str | None = None):
    return SharedIdentifier(type=kind, normalized=normalized, platform=platform, handle=handle)


@pytest.mark.parametrize(
    ("given_identifier", "stix_type", "properties"),
    [
        (identifier("email", "offender@example.net"), "email-addr", {"value": "offender@example.net"}),
        (identifier("profile_url", "instagram.com/synthetic"), "url", {"value": "https://instagram.com/synthetic"}),
        (identifier("profile_url", "https://example.org/x"), "url", {"value": "https://example.org/x"}),
        (
            identifier("username", "snapchat:synthetic", "snapchat", "synthetic"),
            "user-account",
            {"account_login": "synthetic", "account_type": "snapchat"},
        ),
        (
            identifier("skype_id", "live:.cid.0011223344556677"),
            "user-account",
            {"account_login": "live:.cid.0011223344556677", "account_type": "skype"},
        ),
        (identifier("skype_name", "Synthetic Name"), "user-account", {"display_name": "Synthetic Name"}),
        (identifier("phone", "+447911123456"), "x-intake-phone-number", {"value": "+447911123456"}),
        (
            identifier("crypto_wallet", "bc1qsynthetic", "bitcoin"),
            "x-intake-crypto-wallet",
            {"value": "bc1qsynthetic", "network": "bitcoin"},
        ),
        (
            identifier("mtcn", "1234567890"),
            "x-intake-money-transfer",
            {"reference": "1234567890", "network": "western_union"},
        ),
        (
            identifier("moneygram_reference", "12345678"),
            "x-intake-money-transfer",
            {"reference": "12345678", "network": "moneygram"},
        ),
    ],
)
def test_each_identifier_type_becomes_its_observable_with_the_marking(given_identifier, stix_type, properties):
    made = observable(given_identifier, AMBER)
    assert made.type == stix_type
    assert {name: made[name] for name in properties} == properties
    assert made.object_marking_refs == [AMBER]


@given(st.from_regex(r"[a-z0-9]{1,12}@example\.(net|org)", fullmatch=True))
def test_the_same_identifier_is_the_same_object_wherever_it_appears(address):
    assert observable(identifier("email", address), AMBER).id == observable(identifier("email", address), AMBER).id


def test_a_bundle_holds_each_identifier_once_and_one_grouping_per_network():
    shared = identifier("mtcn", "1234567890")
    cases = [
        SharedCase("AAAA-AAAA-AAAA", 7, (shared, identifier("email", "offender@example.net"))),
        SharedCase("BBBB-BBBB-BBBB", 7, (shared,)),
        SharedCase("CCCC-CCCC-CCCC", None, (identifier("phone", "+447911123456"),)),
        SharedCase("DDDD-DDDD-DDDD", None, ()),  # nothing to share: not in the bundle
    ]
    bundle = stix_bundle(cases, tlp="amber", producer="Synthetic Force", now=NOW)
    kinds = [item.type for item in bundle.objects]
    assert kinds.count("marking-definition") == 1 and kinds.count("identity") == 1
    assert sorted(kind for kind in kinds if kind.startswith(("x-intake", "email"))) == [
        "email-addr",
        "x-intake-money-transfer",
        "x-intake-phone-number",
    ]
    groupings = {item.name: item for item in bundle.objects if item.type == "grouping"}
    assert set(groupings) == {"Offender network 7", "Report CCCC-CCCC-CCCC"}
    network = groupings["Offender network 7"]
    assert [ref.external_id for ref in network.external_references] == ["AAAA-AAAA-AAAA", "BBBB-BBBB-BBBB"]
    assert len(network.object_refs) == 2
    assert "DDDD-DDDD-DDDD" not in bundle.serialize()
    assert all(item["object_marking_refs"] == [AMBER] for item in bundle.objects if item.type != "marking-definition")
