"""Sharing with partner agencies: a STIX 2.1 bundle (checked with the stix2 library's own parser) of
the consenting cases' offender identifiers, and NDJSON version 2 with real JSON arrays."""

from __future__ import annotations

import json
import uuid

import stix2

from service.domain.sharing import TLP_EXTENSION, TLP_MARKING_IDS
from tests.support.cases import unique_force, unique_mtcn
from tests.support.http import bearer


def export(client, key: str, **params):
    return client.get("/v1/cases/export", params=params, headers=bearer(key))


def test_a_stix_bundle_holds_the_consenting_cases_identifiers_grouped_by_network_and_marked_amber(
    client, keys, new_case
):
    force, mtcn = unique_force(), unique_mtcn()
    handle = f"synthetic.{uuid.uuid4().hex[:8]}"
    email = f"offender.{uuid.uuid4().hex[:8]}@example.org"
    first = new_case(
        police_force=force,
        consent_to_share=True,
        identifiers=[
            {"type": "mtcn", "value": mtcn},
            {"type": "email", "value": email},
            {"type": "phone", "value": "+44 20 7946 0123"},
            {"type": "profile_url", "value": f"https://instagram.com/{handle}"},
            {"type": "username", "value": handle, "platform": "snapchat"},
            {"type": "crypto_wallet", "value": "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq"},
        ],
    )
    second = new_case(police_force=force, consent_to_share=True, identifiers=[{"type": "mtcn", "value": mtcn}])
    private = f"private.{uuid.uuid4().hex[:8]}@example.org"
    new_case(police_force=force, identifiers=[{"type": "email", "value": private}])

    response = export(client, keys.analyst, format="stix", force=force)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/stix+json")
    bundle = stix2.parse(response.text, allow_custom=True)  # raises on anything that is not valid STIX 2.1
    objects = {obj["type"]: [] for obj in bundle.objects}
    for obj in bundle.objects:
        objects[obj["type"]].append(obj)

    (marking,) = objects["marking-definition"]
    assert marking["id"] == TLP_MARKING_IDS["amber"]
    assert marking["extensions"][TLP_EXTENSION]["tlp_2_0"] == "amber"
    observables = [obj for obj in bundle.objects if obj["type"] not in ("marking-definition", "identity", "grouping")]
    assert all(obj["object_marking_refs"] == [marking["id"]] for obj in observables)
    assert {obj["type"] for obj in observables} == {
        "x-intake-money-transfer",
        "email-addr",
        "x-intake-phone-number",
        "url",
        "user-account",
        "x-intake-crypto-wallet",
    }
    assert [o["reference"] for o in objects["x-intake-money-transfer"]] == [mtcn]  # once, though two cases hold it
    assert private not in response.text  # no consent, not shared
    (grouping,) = objects["grouping"]
    assert {ref["external_id"] for ref in grouping["external_references"]} == {first["reference"], second["reference"]}
    assert set(grouping["object_refs"]) == {obj["id"] for obj in observables}

    events = client.get("/v1/audit", params={"limit": 5}, headers=bearer(keys.admin)).json()["events"]
    event = next(e for e in events if e["action"] == "cases.export")
    assert event["detail"]["format"] == "stix" and event["detail"]["returned"] == 2
    assert event["detail"]["cases"] == [first["reference"], second["reference"]]  # only the shared ones


def test_ndjson_version_2_has_json_arrays_and_version_1_announces_its_sunset(client, keys, new_case):
    force, mtcn = unique_force(), unique_mtcn()
    created = new_case(
        police_force=force,
        platforms=["instagram", "snapchat"],
        images_fake_or_ai=True,
        identifiers=[{"type": "mtcn", "value": mtcn}],
    )
    v2 = export(client, keys.analyst, format="ndjson", version="2", force=force)
    assert v2.status_code == 200 and v2.headers["x-export-version"] == "2" and "sunset" not in v2.headers
    (line,) = [json.loads(text) for text in v2.text.splitlines()]
    assert line["reference"] == created["reference"]
    assert line["platforms"] == ["instagram", "snapchat"]
    assert line["identifiers"] == [{"type": "mtcn", "normalized": mtcn}]
    assert line["flags"] == ["images_fake_or_ai"] and line["images_fake_or_ai"] is True
    v1 = export(client, keys.analyst, format="ndjson", force=force)
    assert json.loads(v1.text.splitlines()[0])["platforms"] == "instagram;snapchat"
    assert v1.headers["x-export-version"] == "1" and "2027" in v1.headers["sunset"]
    assert export(client, keys.analyst, format="csv", version="2").status_code == 422


def test_only_analysts_export_stix(client, keys):
    assert export(client, keys.submitter, format="stix").status_code == 403


def test_ndjson_version_2_keeps_an_identifier_holding_a_semicolon_whole(client, keys, new_case):
    force, mtcn = unique_force(), unique_mtcn()
    page = f"https://example.org/pay;session={uuid.uuid4().hex[:8]}"
    new_case(
        police_force=force,
        identifiers=[{"type": "profile_url", "value": page}, {"type": "mtcn", "value": mtcn}],
    )
    v2 = export(client, keys.analyst, format="ndjson", version="2", force=force)
    (line,) = [json.loads(text) for text in v2.text.splitlines()]
    assert line["identifiers"] == [{"type": "mtcn", "normalized": mtcn}, {"type": "profile_url", "normalized": page}]
    v1 = export(client, keys.analyst, format="ndjson", force=force)
    assert json.loads(v1.text.splitlines()[0])["identifiers"] == f"mtcn:{mtcn};profile_url:{page}"
