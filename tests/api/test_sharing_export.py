"""Sharing with partner agencies: a STIX 2.1 bundle (checked with the stix2 library's own parser) of
the consenting cases' offender identifiers, and NDJSON version 2 with real JSON arrays."""

from __future__ import annotations

import json
import uuid

import pytest
import stix2
from sqlmodel import Session

from service.domain.sharing import TLP_EXTENSION, TLP_MARKING_IDS
from service.storage.keys import create_api_key
from tests.support.cases import unique_force, unique_mtcn
from tests.support.cli import run_intake
from tests.support.database import create_key, database_engine
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


def test_a_case_linked_to_no_other_is_a_grouping_of_its_own_report_whether_or_not_its_cluster_was_read(
    client, keys, new_case
):
    force = unique_force()
    never_read = new_case(
        police_force=force, consent_to_share=True, identifiers=[{"type": "mtcn", "value": unique_mtcn()}]
    )
    read = new_case(police_force=force, consent_to_share=True, identifiers=[{"type": "mtcn", "value": unique_mtcn()}])
    seen = client.get(f"/v1/cases/{read['reference']}/cluster", headers=bearer(keys.analyst))  # its cluster of one
    assert seen.status_code == 200 and seen.json()["cluster"]["cases"] == 1

    response = export(client, keys.analyst, format="stix", force=force)
    assert response.status_code == 200, response.text
    groupings = [obj for obj in stix2.parse(response.text, allow_custom=True).objects if obj["type"] == "grouping"]
    assert sorted(grouping["name"] for grouping in groupings) == sorted(
        f"Report {case['reference']}" for case in (never_read, read)
    )


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


def shared_emails(bundle_text: str) -> set[str]:
    bundle = stix2.parse(bundle_text, allow_custom=True)
    return {obj["value"] for obj in bundle.objects if obj["type"] == "email-addr"}


def last_stix_export(client, keys) -> dict:
    events = client.get("/v1/audit", params={"limit": 5}, headers=bearer(keys.admin)).json()["events"]
    return next(e for e in events if e["action"] == "cases.export")["detail"]


def test_an_analyst_with_the_permission_to_share_without_consent_gets_the_non_consenting_cases_too(
    client, keys, new_case, settings
):
    force, elsewhere = unique_force(), unique_force()
    agreed = f"agreed.{uuid.uuid4().hex[:8]}@example.org"
    private = f"private.{uuid.uuid4().hex[:8]}@example.org"
    other_force = f"other.{uuid.uuid4().hex[:8]}@example.org"
    new_case(police_force=force, consent_to_share=True, identifiers=[{"type": "email", "value": agreed}])
    withheld = new_case(police_force=force, identifiers=[{"type": "email", "value": private}])
    new_case(police_force=elsewhere, identifiers=[{"type": "email", "value": other_force}])

    plain = export(client, keys.analyst, format="stix", force=force)
    assert plain.status_code == 200 and shared_emails(plain.text) == {agreed}
    assert last_stix_export(client, keys)["without_consent"] is False

    sharer = create_key(
        settings.resolved_database_url, "analyst", "partner desk", can_share_without_consent=True, forces=[force]
    )
    shared = export(client, sharer, format="stix")
    assert shared.status_code == 200, shared.text
    assert shared_emails(shared.text) == {agreed, private}  # still only its own force's cases
    assert shared.text.count(TLP_MARKING_IDS["amber"]) > 1  # still marked
    audited = last_stix_export(client, keys)
    assert audited["without_consent"] is True and withheld["reference"] in audited["cases"]

    ndjson = export(client, sharer, format="ndjson")  # the permission is about STIX sharing, nothing else
    assert ndjson.status_code == 200 and last_stix_export(client, keys).get("without_consent") is None


@pytest.mark.parametrize("role", ["submitter", "admin"])
def test_only_an_analyst_key_may_share_without_consent(settings, role, tmp_path):
    with (
        database_engine(settings.resolved_database_url) as engine,
        Session(engine) as session,
        pytest.raises(ValueError, match="only analyst keys can be allowed to share"),
    ):
        create_api_key(session, role, "x", can_share_without_consent=True)
    refused = run_intake(
        "keys", "create", "--role", role, "--name", "x", "--share-without-consent",
        database_url=settings.resolved_database_url,
    )  # fmt: skip
    assert refused.returncode == 2 and "only analyst keys can be allowed to share" in refused.stderr
    assert "isk_" not in refused.stdout


def test_intake_keys_create_and_list_show_the_permission_to_share_without_consent(settings):
    url = settings.resolved_database_url
    name = f"desk {uuid.uuid4().hex[:8]}"
    made = run_intake(
        "keys", "create", "--role", "analyst", "--name", name, "--share-without-consent", database_url=url
    )
    assert made.returncode == 0, made.stderr
    assert "include cases whose victims did not agree to sharing" in made.stdout
    key_id = made.stdout.strip().splitlines()[-1].split("_")[1]
    listed = run_intake("keys", "list", database_url=url)
    (line,) = [line for line in listed.stdout.splitlines() if line.startswith(key_id + "\t")]
    assert line.split("\t")[4] == "share-without-consent"


def test_intake_export_shares_non_consenting_cases_only_when_told_to(client, keys, new_case, settings, tmp_path):
    force = unique_force()
    agreed = f"agreed.{uuid.uuid4().hex[:8]}@example.org"
    private = f"private.{uuid.uuid4().hex[:8]}@example.org"
    new_case(police_force=force, consent_to_share=True, identifiers=[{"type": "email", "value": agreed}])
    new_case(police_force=force, identifiers=[{"type": "email", "value": private}])
    output = tmp_path / "bundle.json"
    environment = {
        "INTAKE_DATABASE_URL": settings.resolved_database_url,
        "INTAKE_CONTENT_DIR": str(settings.content_dir),
    }

    plain = run_intake("export", "--format", "stix", "--force", force, "--output", str(output), environment=environment)
    assert plain.returncode == 0, plain.stderr
    assert shared_emails(output.read_text()) == {agreed}
    told = run_intake(
        "export", "--format", "stix", "--force", force, "--share-without-consent", "--output", str(output),
        environment=environment,
    )  # fmt: skip
    assert told.returncode == 0, told.stderr
    assert shared_emails(output.read_text()) == {agreed, private}
    audited = last_stix_export(client, keys)
    assert audited["without_consent"] is True and audited["output"] == "bundle.json"
    refused = run_intake(
        "export", "--format", "csv", "--share-without-consent", "--output", str(tmp_path / "x.csv"),
        environment=environment,
    )  # fmt: skip
    assert refused.returncode == 2 and "--share-without-consent is for --format stix" in refused.stderr
