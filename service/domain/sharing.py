"""Sharing offender identifiers with partner agencies as STIX 2.1: observables for what the offenders
used, one grouping per offender network, every object marked with TLP 2.0. No victim data: a partner
learns which accounts, numbers and transfer references belong together, and the case references to
ask about."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from stix2 import (
    URL,
    Bundle,
    CustomObservable,
    EmailAddress,
    ExternalReference,
    Grouping,
    Identity,
    MarkingDefinition,
    UserAccount,
    properties,
)

# TLP 2.0 as STIX 2.1 marking definitions: the ids and extension the FIRST/OASIS definitions use.
TLP_EXTENSION = "extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d"
TLP_MARKING_IDS = {
    "clear": "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487",
    "green": "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb",
    "amber": "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421",
    "amber+strict": "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003",
    "red": "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1",
}


@CustomObservable(
    "x-intake-phone-number", [("value", properties.StringProperty(required=True))], id_contrib_props=["value"]
)
class PhoneNumber:
    """A phone number in E.164 (STIX 2.1 has no phone observable)."""


@CustomObservable(
    "x-intake-crypto-wallet",
    [("value", properties.StringProperty(required=True)), ("network", properties.StringProperty())],
    id_contrib_props=["value"],
)
class CryptoWallet:
    """A cryptocurrency address, with its network where it is known."""


@CustomObservable(
    "x-intake-money-transfer",
    [("reference", properties.StringProperty(required=True)), ("network", properties.StringProperty(required=True))],
    id_contrib_props=["reference", "network"],
)
class MoneyTransfer:
    """A money transfer's tracking reference: a Western Union MTCN or a MoneyGram reference number."""


@dataclass(frozen=True)
class SharedIdentifier:
    type: str
    normalized: str
    platform: str | None
    handle: str | None


@dataclass(frozen=True)
class SharedCase:
    reference: str
    cluster_id: int | None
    identifiers: tuple[SharedIdentifier, ...]


def tlp_marking(level: str) -> MarkingDefinition:
    return MarkingDefinition(
        id=TLP_MARKING_IDS[level],
        created="2022-10-01T00:00:00.000Z",
        name=f"TLP:{level.upper()}",
        extensions={TLP_EXTENSION: {"extension_type": "property-extension", "tlp_2_0": level}},
    )


def observable(identifier: SharedIdentifier, marking: str):
    marked = {"object_marking_refs": [marking]}
    kind, value = identifier.type, identifier.normalized
    if kind == "email":
        return EmailAddress(value=value, **marked)
    if kind == "profile_url":
        return URL(value=value if "://" in value else f"https://{value}", **marked)
    if kind in ("username", "skype_id"):
        return UserAccount(
            account_login=identifier.handle or value, account_type=identifier.platform or "skype", **marked
        )
    if kind == "skype_name":
        return UserAccount(display_name=value, account_type="skype", **marked)
    if kind == "phone":
        return PhoneNumber(value=value, **marked)
    if kind == "crypto_wallet":
        return CryptoWallet(value=value, network=identifier.platform, **marked)
    network = "western_union" if kind == "mtcn" else "moneygram"
    return MoneyTransfer(reference=value, network=network, **marked)


def stix_bundle(cases: list[SharedCase], *, tlp: str, producer: str, now: datetime) -> Bundle:
    """One bundle: the producer, the TLP marking, each identifier once, a grouping per network."""
    marking = tlp_marking(tlp)
    identity = Identity(name=producer, identity_class="system", object_marking_refs=[marking.id])
    observables: dict[str, object] = {}
    networks: dict[object, tuple[set[str], list[str]]] = {}
    for case in cases:
        if not case.identifiers:
            continue
        refs, references = networks.setdefault(case.cluster_id or case.reference, (set(), []))
        references.append(case.reference)
        for identifier in case.identifiers:
            made = observable(identifier, marking.id)
            observables.setdefault(made.id, made)
            refs.add(made.id)
    groupings = [
        Grouping(
            name=f"Offender network {key}" if isinstance(key, int) else f"Report {key}",
            description=f"Offender identifiers from {len(references)} sextortion report(s) linked by shared "
            "identifiers or images.",
            context="suspicious-activity",
            object_refs=sorted(refs),
            created_by_ref=identity.id,
            created=now,
            modified=now,
            object_marking_refs=[marking.id],
            external_references=[
                ExternalReference(source_name="sextortion-intake", external_id=reference) for reference in references
            ],
            allow_custom=True,
        )
        for key, (refs, references) in networks.items()
    ]
    return Bundle(objects=[marking, identity, *observables.values(), *groupings], allow_custom=True)
