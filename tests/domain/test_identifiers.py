"""Identifier validation and normalisation: tables of real-shaped (synthetic) values, and properties."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.domain.identifiers import IdentifierError, IdentifierType, normalize_identifier
from tests.support.identifiers import VALID


@pytest.mark.parametrize(("kind", "value", "platform", "normalized", "extracted"), VALID)
def test_valid_identifiers_normalise_to_their_canonical_form(kind, value, platform, normalized, extracted):
    result = normalize_identifier(kind, value, platform)
    assert result.normalized == normalized
    assert (result.platform, result.handle) == extracted
    assert result.value == value  # kept exactly as given


INVALID = [
    ("mtcn", "123456789", "A Western Union MTCN is 10 digits; this has 9."),
    ("mtcn", "12345678901", "A Western Union MTCN is 10 digits; this has 11."),
    ("mtcn", "12345abcde", "10 digits only"),
    ("moneygram_reference", "1234567", "A MoneyGram reference number is 8 digits; this has 7."),
    ("skype_id", "Jane Example", "looks like the display name"),
    ("skype_id", "ab", "doesn't look like a Skype ID"),
    ("profile_url", "not a link at all", "doesn't look like a web address"),
    ("profile_url", "ftp://example.org/x", "doesn't look like a web address"),
    ("email", "someone@", "doesn't look like an email address"),
    ("phone", "call me maybe", "doesn't look like a phone number"),
    ("phone", "12", "isn't complete"),
    ("phone", "020 7946", "isn't complete"),
    ("crypto_wallet", "1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN3", "check digits don't match"),
    ("crypto_wallet", "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t5", "check characters don't match"),
    ("crypto_wallet", "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqzk5jj1", "check characters"),
    # BIP-350: a version-1 program with a bech32 (not bech32m) checksum is invalid.
    ("crypto_wallet", "bc1pw508d6qejxtdg4y5r3zarvary0c5xw7kw508d6qejxtdg4y5r3zarvary0c5xw7k7grplx", "check characters"),
    ("crypto_wallet", "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD", "capital letters don't match"),
    ("crypto_wallet", "hello", "wallet address"),
    ("username", "some_name", "which app or website"),
    ("username", "two words", "no spaces"),
    ("not_a_type", "x", "don't know the identifier type"),
    ("mtcn", "   ", "empty"),
]


@pytest.mark.parametrize(("kind", "value", "message"), INVALID)
def test_invalid_identifiers_are_refused_in_plain_words(kind, value, message):
    platform = "instagram" if kind == "username" and " " in value else None
    with pytest.raises(IdentifierError) as refusal:
        normalize_identifier(kind, value, platform)
    assert message in str(refusal.value)


@given(
    digits=st.text(alphabet="0123456789", min_size=10, max_size=10),
    separators=st.lists(st.sampled_from(["", " ", "-", ".", "  "]), min_size=10, max_size=10),
)
def test_every_mtcn_with_any_separators_normalises_to_its_digits(digits, separators):
    typed = "".join(digit + separator for digit, separator in zip(digits, separators, strict=True))
    assert normalize_identifier("mtcn", typed).normalized == digits


@given(st.text(alphabet="0123456789", min_size=1, max_size=20).filter(lambda d: len(d) != 10))
def test_an_mtcn_of_the_wrong_length_says_how_many_digits_it_has(digits):
    with pytest.raises(IdentifierError, match=f"this has {len(digits)}"):
        normalize_identifier("mtcn", digits)


_handle = st.from_regex(r"[a-z][a-z0-9._]{2,20}", fullmatch=True)
_tracking = st.dictionaries(
    st.sampled_from(["utm_source", "utm_medium", "igsh", "fbclid", "ref", "s"]),
    st.from_regex(r"[a-z0-9]{1,8}", fullmatch=True),
    max_size=3,
)


@given(
    host=st.sampled_from(
        [
            "instagram.com",
            "www.instagram.com",
            "m.instagram.com",
            "x.com",
            "twitter.com",
            "www.tiktok.com",
            "example.org",
        ]
    ),
    handle=_handle,
    tracking=_tracking,
    upper=st.booleans(),
)
def test_profile_url_normalisation_is_idempotent_and_drops_tracking(host, handle, tracking, upper):
    query = "&".join(f"{name}={value}" for name, value in tracking.items())
    url = f"https://{host.upper() if upper else host}/{handle}/" + (f"?{query}" if query else "")
    once = normalize_identifier("profile_url", url).normalized
    assert normalize_identifier("profile_url", once).normalized == once
    assert "?" not in once


IDEMPOTENT_SAMPLES = [(kind, value, platform) for kind, value, platform, *_ in VALID if kind != "username"]


@pytest.mark.parametrize(("kind", "value", "platform"), IDEMPOTENT_SAMPLES)
def test_normalising_a_normalised_identifier_changes_nothing(kind, value, platform):
    once = normalize_identifier(kind, value, platform).normalized
    assert normalize_identifier(kind, once, platform).normalized == once


@given(st.text(max_size=80))
def test_no_input_makes_normalisation_fail_other_than_with_a_plain_refusal(text):
    for kind in IdentifierType:
        try:
            normalize_identifier(kind, text, "instagram")
        except IdentifierError as refusal:
            assert str(refusal)
