"""What each kind of offender identifier is, and its one canonical form.

Offenders reuse the same MTCN receivers, Skype IDs and profile URLs across many victims, so the
normalised form is what links cases: two spellings of one identifier must normalise alike, and
normalising a normalised value must change nothing. Error messages are read by victims, so they
say what is wrong in plain words.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

import base58
import bech32
import phonenumbers
from email_validator import EmailNotValidError, validate_email
from eth_hash.auto import keccak


class IdentifierType(StrEnum):
    mtcn = "mtcn"
    moneygram_reference = "moneygram_reference"
    skype_id = "skype_id"
    skype_name = "skype_name"
    profile_url = "profile_url"
    email = "email"
    phone = "phone"
    crypto_wallet = "crypto_wallet"
    username = "username"


class IdentifierError(ValueError):
    """A value that is not a valid identifier of its type; the message is for the victim."""


@dataclass(frozen=True)
class NormalizedIdentifier:
    type: IdentifierType
    value: str
    normalized: str
    platform: str | None = None
    handle: str | None = None


MAX_IDENTIFIER_LENGTH = 500  # long enough for any real profile link; indexable everywhere
DEFAULT_PHONE_REGION = "GB"


# Pure, so safe to remember: validation and storage each ask for the same identifiers in turn.
@lru_cache(maxsize=4096)
def normalize_identifier(
    identifier_type: IdentifierType | str,
    value: str,
    platform: str | None = None,
    *,
    default_phone_region: str = DEFAULT_PHONE_REGION,
) -> NormalizedIdentifier:
    """Validate `value` as an identifier of `identifier_type` and give its canonical form."""
    return _normalized(identifier_type, value, platform, default_phone_region)


# A report's identifiers are normalised when the input is checked and again when the case is decided:
# the second time is a lookup. Small, so what it holds is only the last few reports' identifiers.
@lru_cache(maxsize=64)
def _normalized(identifier_type, value: str, platform: str | None, default_phone_region: str) -> NormalizedIdentifier:
    normalized = _normalize(identifier_type, value, platform, default_phone_region)
    if len(normalized.normalized) > 2 * MAX_IDENTIFIER_LENGTH:
        raise IdentifierError("This is too long to be an identifier.")
    return normalized


def _normalize(  # noqa: C901 - a flat dispatch, one branch per identifier type
    identifier_type, value: str, platform: str | None, default_phone_region: str
) -> NormalizedIdentifier:
    try:
        kind = IdentifierType(identifier_type)
    except ValueError:
        known = ", ".join(t.value for t in IdentifierType)
        raise IdentifierError(f"We don't know the identifier type '{identifier_type}'. Use one of: {known}.") from None
    given = value.strip()
    if not given:
        raise IdentifierError("This is empty. Please type the identifier.")
    if len(given) > MAX_IDENTIFIER_LENGTH:
        raise IdentifierError(f"This is too long to be an identifier (over {MAX_IDENTIFIER_LENGTH} characters).")
    if kind is IdentifierType.mtcn:
        return NormalizedIdentifier(kind, value, _digits(given, 10, "A Western Union MTCN"))
    if kind is IdentifierType.moneygram_reference:
        return NormalizedIdentifier(kind, value, _digits(given, 8, "A MoneyGram reference number"))
    if kind is IdentifierType.skype_id:
        handle = _skype_id(given)
        return NormalizedIdentifier(kind, value, handle, platform="skype", handle=handle)
    if kind is IdentifierType.skype_name:
        display_name = " ".join(given.split()).casefold()
        return NormalizedIdentifier(kind, value, display_name, platform="skype")
    if kind is IdentifierType.profile_url:
        normalized, found_platform, handle = _profile_url(given)
        return NormalizedIdentifier(kind, value, normalized, platform=found_platform, handle=handle)
    if kind is IdentifierType.email:
        return NormalizedIdentifier(kind, value, _email(given))
    if kind is IdentifierType.phone:
        return NormalizedIdentifier(kind, value, _phone(given, default_phone_region))
    if kind is IdentifierType.crypto_wallet:
        normalized, network = _crypto_wallet(given)
        return NormalizedIdentifier(kind, value, normalized, platform=network)
    return _username(value, given, platform)


# --- money transfer references ------------------------------------------------------------------

_MONEY_REFERENCE_SEPARATORS = re.compile(r"[\s\-./]+")


def _digits(given: str, length: int, what: str) -> str:
    compact = _MONEY_REFERENCE_SEPARATORS.sub("", given)
    if not compact.isascii() or not compact.isdigit():
        raise IdentifierError(f"{what} is made of {length} digits only; this has other characters in it.")
    if len(compact) != length:
        raise IdentifierError(f"{what} is {length} digits; this has {len(compact)}.")
    return compact


# --- Skype ----------------------------------------------------------------------------------------

# Skype IDs are either `live:` ids (Microsoft accounts, `live:.cid.` + hex for the newest ones) or
# legacy Skype names: 6-32 characters, starting with a letter, letters/digits/. , - _ and no spaces.
_LIVE_SKYPE_ID = re.compile(r"live:(\.cid\.[0-9a-f]{8,32}|[a-z0-9][a-z0-9._-]{0,63})")
_LEGACY_SKYPE_ID = re.compile(r"[a-z][a-z0-9.,_-]{5,31}")


def _skype_id(given: str) -> str:
    candidate = given.removeprefix("skype:").split("?")[0].strip().lower()
    if " " in candidate:
        raise IdentifierError(
            "A Skype ID has no spaces. This looks like the display name: open their profile and "
            "copy the ID shown next to the word 'Skype' (it often starts with 'live:')."
        )
    if _LIVE_SKYPE_ID.fullmatch(candidate) or _LEGACY_SKYPE_ID.fullmatch(candidate):
        return candidate
    raise IdentifierError(
        "This doesn't look like a Skype ID. A Skype ID starts with 'live:' or is 6 to 32 letters "
        "and numbers starting with a letter, with no spaces."
    )


# --- email and phone ----------------------------------------------------------------------------


def _email(given: str) -> str:
    try:
        checked = validate_email(given, check_deliverability=False)
    except EmailNotValidError as error:
        raise IdentifierError(f"This doesn't look like an email address: {error}") from None
    # The local part is case-sensitive in theory and never in practice; one spelling links cases.
    return checked.normalized.lower()


def _phone(given: str, default_region: str) -> str:
    try:
        number = phonenumbers.parse(given, default_region)
    except phonenumbers.NumberParseException:
        raise IdentifierError(
            "This doesn't look like a phone number. Include the country code if it is not a UK "
            "number, for example +234 801 234 5678."
        ) from None
    if not phonenumbers.is_valid_number(number):
        raise IdentifierError(
            "This phone number isn't complete or isn't a real number. Check the digits and the country code."
        )
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


# --- crypto wallets -----------------------------------------------------------------------------

_BECH32M_CONSTANT = 0x2BC830A3  # BIP-350: the only difference from bech32's constant of 1
_BITCOIN_BASE58_VERSIONS = {0x00: "bitcoin", 0x05: "bitcoin", 0x6F: "bitcoin-testnet", 0xC4: "bitcoin-testnet"}
_BITCOIN_SEGWIT_HRPS = {"bc": "bitcoin", "tb": "bitcoin-testnet"}
_ETHEREUM_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
_WALLET_HELP = (
    "This doesn't look like a wallet address we can check (Bitcoin or Ethereum). Copy and paste "
    "the whole address rather than typing it."
)


def _crypto_wallet(given: str) -> tuple[str, str]:
    address = given.removeprefix("bitcoin:").removeprefix("ethereum:").split("?")[0].strip()
    if _ETHEREUM_ADDRESS.fullmatch(address):
        return _ethereum(address), "ethereum"
    hrp = address.lower().split("1")[0] if "1" in address else ""
    if hrp in _BITCOIN_SEGWIT_HRPS:
        return _segwit(address), _BITCOIN_SEGWIT_HRPS[hrp]
    if 25 <= len(address) <= 35:
        try:
            payload = base58.b58decode_check(address)
        except ValueError:
            raise IdentifierError(
                "This Bitcoin address has a mistake in it (its check digits don't match). Copy and "
                "paste it rather than typing it."
            ) from None
        if len(payload) == 21 and payload[0] in _BITCOIN_BASE58_VERSIONS:
            return address, _BITCOIN_BASE58_VERSIONS[payload[0]]
    raise IdentifierError(_WALLET_HELP)


def _segwit(address: str) -> str:
    """BIP-173/BIP-350 segwit address; canonical form is lower case."""
    if address != address.lower() and address != address.upper():
        raise IdentifierError("A Bitcoin address like this is all lower case or all upper case, not mixed.")
    lowered = address.lower()
    hrp, data = bech32.bech32_decode(lowered)
    mistake = IdentifierError(
        "This Bitcoin address has a mistake in it (its check characters don't match). Copy and "
        "paste it rather than typing it."
    )
    if hrp is None:
        # bech32_decode accepts only the BIP-173 checksum: try BIP-350's (taproot and later).
        hrp, data = _bech32m_decode(lowered)
        if hrp is None:
            raise mistake
        if not data or data[0] == 0:
            raise mistake
    elif not data or data[0] != 0:
        raise mistake  # version 1+ must use bech32m
    program = bech32.convertbits(data[1:], 5, 8, False)
    if program is None or not 2 <= len(program) <= 40 or data[0] > 16:
        raise mistake
    if data[0] == 0 and len(program) not in (20, 32):
        raise mistake
    return lowered


def _bech32m_decode(address: str) -> tuple[str | None, list[int] | None]:
    separator = address.rfind("1")
    if separator < 1 or separator + 7 > len(address) or len(address) > 90:
        return None, None
    hrp, encoded = address[:separator], address[separator + 1 :]
    if any(char not in bech32.CHARSET for char in encoded):
        return None, None
    data = [bech32.CHARSET.find(char) for char in encoded]
    if bech32.bech32_polymod(bech32.bech32_hrp_expand(hrp) + data) != _BECH32M_CONSTANT:
        return None, None
    return hrp, data[:-6]


def _ethereum(address: str) -> str:
    """EIP-55: a mixed-case address carries a checksum that must match; canonical is checksummed."""
    hex_part = address[2:]
    digest = keccak(hex_part.lower().encode("ascii")).hex()
    checksummed = "0x" + "".join(
        char.upper() if char.isalpha() and int(digest[i], 16) >= 8 else char.lower()
        for i, char in enumerate(hex_part.lower())
    )
    is_mixed_case = hex_part != hex_part.lower() and hex_part != hex_part.upper()
    if is_mixed_case and address != checksummed:
        raise IdentifierError(
            "This Ethereum address has a mistake in it (its capital letters don't match its "
            "checksum). Copy and paste it rather than typing it."
        )
    return checksummed


# --- profile URLs -------------------------------------------------------------------------------

_HOST_ALIASES = {
    "x.com": "twitter.com",
    "mobile.twitter.com": "twitter.com",
    "fb.com": "facebook.com",
    "web.facebook.com": "facebook.com",
    "instagr.am": "instagram.com",
    "vm.tiktok.com": "tiktok.com",
    "youtu.be": "youtube.com",
    "wa.me": "whatsapp.com",
}
# Subdomains that show the same page as the bare domain.
_EQUIVALENT_SUBDOMAINS = ("www.", "m.", "mobile.", "touch.", "mbasic.")
_PLATFORMS_BY_HOST = {
    "facebook.com": "facebook",
    "instagram.com": "instagram",
    "twitter.com": "twitter",
    "tiktok.com": "tiktok",
    "snapchat.com": "snapchat",
    "youtube.com": "youtube",
    "linkedin.com": "linkedin",
    "reddit.com": "reddit",
    "t.me": "telegram",
    "telegram.me": "telegram",
    "whatsapp.com": "whatsapp",
    "onlyfans.com": "onlyfans",
    "discord.com": "discord",
    "twitch.tv": "twitch",
    "pinterest.com": "pinterest",
    "tumblr.com": "tumblr",
    "vk.com": "vk",
    "threads.net": "threads",
    "skype.com": "skype",
}
# Query parameters that say which profile this is, and so are kept; all others are tracking or
# presentation and are dropped so that the same profile shared twice normalises alike.
_IDENTITY_PARAMETERS = {
    "facebook.com": {"id"},
    "youtube.com": {"v", "list"},
}
# Paths under which the first segment is not a handle.
_RESERVED_FIRST_SEGMENTS = {
    "p",
    "reel",
    "reels",
    "stories",
    "explore",
    "watch",
    "hashtag",
    "i",
    "intent",
    "share",
    "home",
    "search",
    "groups",
    "pages",
    "events",
    "channel",
    "c",
    "playlist",
    "in",
    "r",
    "u",
    "user",
    "add",
    "tv",
    "status",
    "profile.php",
    "people",
    "photo",
    "photos",
    "video",
}
_HANDLE = re.compile(r"[A-Za-z0-9._-]{1,100}")


def _profile_url(given: str) -> tuple[str, str | None, str | None]:
    candidate = given if "://" in given else f"https://{given}"
    not_a_web_address = IdentifierError(
        "This doesn't look like a web address. Copy the address of their profile page from "
        "your browser, for example https://www.instagram.com/their.name"
    )
    try:
        parts = urlsplit(candidate)
        host = (parts.hostname or "").rstrip(".").lower()
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        raise not_a_web_address from None
    if parts.scheme.lower() not in ("http", "https") or "." not in host or any(c.isspace() for c in host):
        raise not_a_web_address
    try:
        host = host.encode("idna").decode("ascii")
    except UnicodeError:
        raise IdentifierError("The website name in this address isn't valid.") from None
    for prefix in _EQUIVALENT_SUBDOMAINS:
        if host.startswith(prefix) and host.count(".") >= 2:
            host = host.removeprefix(prefix)
            break
    host = _HOST_ALIASES.get(host, host)
    platform = _PLATFORMS_BY_HOST.get(host)

    segments = [unquote(segment) for segment in parts.path.split("/") if segment and segment != "."]
    kept_names = _IDENTITY_PARAMETERS.get(host)
    # Most hosts keep no parameter: their query is not parsed at all (a sixth of normalising a link).
    query = parse_qsl(parts.query) if kept_names and parts.query else []
    kept_query = sorted((name, val) for name, val in query if name in kept_names)
    handle = _handle_from(host, segments, dict(kept_query)) if platform else None

    path = "/" + "/".join(quote(segment, safe="@:+!$&'()*,;=-._~") for segment in segments)
    if handle and platform in {"instagram", "twitter", "tiktok", "github", "telegram", "threads"}:
        # Handles on these platforms are case-insensitive: fold the path so links match.
        path = path.lower()
    normalized = f"https://{host}{path.rstrip('/') or ''}"
    if kept_query:
        normalized += "?" + urlencode(kept_query)
    return normalized, platform, handle


def _handle_from(host: str, segments: list[str], query: dict[str, str]) -> str | None:
    if host == "facebook.com" and segments[:1] == ["profile.php"] and query.get("id"):
        return query["id"]
    if not segments:
        return None
    first = segments[0]
    if host == "youtube.com" and first.startswith("@"):
        return first[1:].lower()
    if host == "snapchat.com" and first == "add" and len(segments) > 1:
        return segments[1].lower()
    if host == "linkedin.com" and first == "in" and len(segments) > 1:
        return segments[1].lower()
    if host == "reddit.com" and first in ("u", "user") and len(segments) > 1:
        return segments[1].lower()
    if first.lower() in _RESERVED_FIRST_SEGMENTS:
        return None
    handle = first.removeprefix("@")
    return handle.lower() if _HANDLE.fullmatch(handle) else None


# --- usernames ----------------------------------------------------------------------------------

_PLATFORM_NAME = re.compile(r"[a-z0-9][a-z0-9 ._-]{0,39}")


def _username(value: str, given: str, platform: str | None) -> NormalizedIdentifier:
    platform_name = (platform or "").strip().lower()
    if not platform_name:
        raise IdentifierError("Tell us which app or website this username is on (for example instagram or snapchat).")
    if not _PLATFORM_NAME.fullmatch(platform_name):
        raise IdentifierError("The app or website name should be a short plain name like 'snapchat'.")
    platform_name = "-".join(platform_name.split())
    handle = given.removeprefix("@").strip()
    if not handle or any(char.isspace() for char in handle) and platform_name != "skype":
        raise IdentifierError("A username has no spaces. Copy it exactly as it appears on their profile.")
    folded = handle.casefold()
    return NormalizedIdentifier(
        IdentifierType.username, value, f"{platform_name}:{folded}", platform=platform_name, handle=folded
    )


# --- searching with what people type -------------------------------------------------------------

_HANDLE_SEARCH = re.compile(r"^@?[\w.\-]{1,100}$")


@dataclass(frozen=True)
class IdentifierSearch:
    """What a raw search text can mean: identifiers it is a valid value of, each normalised exactly
    as intake does, and the account handle it may be (found in profile links and usernames too)."""

    identifiers: tuple[NormalizedIdentifier, ...]
    handle: str | None


def interpret_search(text: str, *, default_phone_region: str = DEFAULT_PHONE_REGION) -> IdentifierSearch:
    found = []
    for kind in IdentifierType:
        if kind is IdentifierType.username:
            continue  # it needs its platform: the handle below finds it
        try:
            found.append(normalize_identifier(kind, text, default_phone_region=default_phone_region))
        except IdentifierError:
            continue
    stripped = text.strip()
    handle = stripped.removeprefix("@").casefold() if _HANDLE_SEARCH.match(stripped) else None
    return IdentifierSearch(tuple(found), handle)
