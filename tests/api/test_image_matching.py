"""Image evidence gets a PDQ hash at intake; cases holding the same picture are linked; analysts
search by image or hash. Both databases; synthetic pictures only."""

from __future__ import annotations

import random
import uuid

import pytest

from devsupport.images import encoded, half_size, synthetic_picture
from service.domain.perceptual import PdqHash
from tests.support.cases import unique_force
from tests.support.evidence import upload as post_evidence
from tests.support.http import bearer
from tests.support.synthetic import TEXT


def fresh_seed() -> int:
    return random.SystemRandom().randrange(10**9)


def upload(client, case: dict, *files: tuple[str, bytes, str]) -> list[dict]:
    response = post_evidence(client, case, *files)
    assert response.status_code == 201, response.text
    return response.json()["evidence"]


def analyst_evidence(client, keys, reference: str) -> list[dict]:
    response = client.get(f"/v1/cases/{reference}/evidence", headers=bearer(keys.analyst))
    assert response.status_code == 200, response.text
    return response.json()["evidence"]


def links(client, key: str, reference: str) -> list[dict]:
    response = client.get(f"/v1/cases/{reference}/links", headers=bearer(key))
    assert response.status_code == 200, response.text
    return response.json()["links"]


def test_images_get_a_pdq_hash_at_intake_and_other_files_do_not(client, keys, new_case):
    case = new_case()
    picture = synthetic_picture(fresh_seed())
    upload(client, case, ("bait.jpg", encoded(picture), "image/jpeg"), ("chat.txt", TEXT, "text/plain"))
    image, text = analyst_evidence(client, keys, case["reference"])
    assert PdqHash.from_hex(image["pdq_hash"]).hex == image["pdq_hash"]
    assert image["pdq_quality"] >= 50
    assert text["pdq_hash"] is None and text["pdq_quality"] is None


def test_a_re_encoded_resized_copy_links_the_cases_with_its_distance(client, keys, new_case):
    picture = synthetic_picture(fresh_seed())
    first, second, unrelated = new_case(), new_case(), new_case()
    (original,) = upload(client, first, ("a.png", encoded(picture, "PNG"), "image/png"))
    (copy,) = upload(client, second, ("b.jpg", encoded(half_size(picture), quality=70), "image/jpeg"))
    upload(client, unrelated, ("c.jpg", encoded(synthetic_picture(fresh_seed())), "image/jpeg"))

    (link,) = links(client, keys.analyst, first["reference"])
    assert link["reference"] == second["reference"]
    assert link["link_types"] == ["image"] and link["shared"] == []
    (image,) = link["images"]
    assert (image["evidence_id"], image["matched_evidence_id"]) == (original["id"], copy["id"])
    assert 0 <= image["distance"] <= 31
    # Seen from the other side, the same link the other way round.
    (back,) = links(client, keys.analyst, second["reference"])
    assert back["reference"] == first["reference"]
    assert (back["images"][0]["evidence_id"], back["images"][0]["matched_evidence_id"]) == (copy["id"], original["id"])
    assert links(client, keys.analyst, unrelated["reference"]) == []


def test_an_identifier_and_an_image_both_show_on_one_link(client, keys, new_case):
    mtcn = str(uuid.uuid4().int)[:10]
    picture = synthetic_picture(fresh_seed())
    first = new_case(identifiers=[{"type": "mtcn", "value": mtcn}])
    second = new_case(identifiers=[{"type": "mtcn", "value": mtcn}])
    upload(client, first, ("a.jpg", encoded(picture), "image/jpeg"))
    upload(client, second, ("b.jpg", encoded(picture, quality=70), "image/jpeg"))
    (link,) = links(client, keys.analyst, second["reference"])
    assert link["link_types"] == ["identifier", "image"]
    assert [shared["type"] for shared in link["shared"]] == ["mtcn"]


def test_images_of_one_case_do_not_link_it_to_itself(client, keys, new_case):
    case = new_case()
    picture = synthetic_picture(fresh_seed())
    upload(
        client, case, ("a.jpg", encoded(picture), "image/jpeg"), ("b.jpg", encoded(picture, quality=70), "image/jpeg")
    )
    assert links(client, keys.analyst, case["reference"]) == []


def test_a_flat_image_is_hashed_but_too_poor_to_link_anything(client, keys, new_case):
    flat = synthetic_picture(0).point(lambda _: 128)
    first, second = new_case(), new_case()
    upload(client, first, ("a.png", encoded(flat, "PNG"), "image/png"))
    upload(client, second, ("b.png", encoded(flat, "PNG"), "image/png"))
    (evidence,) = analyst_evidence(client, keys, first["reference"])
    assert evidence["pdq_quality"] < 50
    assert links(client, keys.analyst, first["reference"]) == []


def test_links_are_for_analysts_only(client, keys, new_case):
    case = new_case()
    assert client.get(f"/v1/cases/{case['reference']}/links", headers=bearer(case["reporter_token"])).status_code == 403
    assert client.get(f"/v1/cases/{case['reference']}/links", headers=bearer(keys.submitter)).status_code == 403


def test_analysts_search_by_hash_or_by_image_and_the_search_is_audited(client, keys, new_case):
    picture = synthetic_picture(fresh_seed())
    holder = new_case()
    (stored,) = upload(client, holder, ("a.jpg", encoded(picture), "image/jpeg"))

    by_image = client.post(
        "/v1/evidence/matches",
        headers={**bearer(keys.analyst), "X-Access-Reason": "bait photo from a partner"},
        files={"file": ("query.jpg", encoded(half_size(picture), quality=70), "image/jpeg")},
    )
    assert by_image.status_code == 200, by_image.text
    answer = by_image.json()
    assert answer["max_distance"] == 31 and answer["query"]["quality"] >= 50
    assert [(m["reference"], m["evidence_id"]) for m in answer["matches"]] == [(holder["reference"], stored["id"])]

    stored_hash = analyst_evidence(client, keys, holder["reference"])[0]["pdq_hash"]
    by_hash = client.post("/v1/evidence/matches", headers=bearer(keys.analyst), json={"pdq_hash": stored_hash.upper()})
    assert by_hash.status_code == 200, by_hash.text
    (match,) = by_hash.json()["matches"]
    assert match["distance"] == 0 and match["reference"] == holder["reference"]

    narrowed = client.post(
        "/v1/evidence/matches",
        headers=bearer(keys.analyst),
        json={"pdq_hash": answer["query"]["pdq_hash"], "max_distance": 0},
    )
    assert narrowed.json()["matches"] == [] or narrowed.json()["matches"][0]["distance"] == 0

    events = client.get("/v1/audit", params={"limit": 10}, headers=bearer(keys.admin)).json()["events"]
    searches = [event for event in events if event["action"] == "evidence.matches"]
    assert {event["detail"]["source"] for event in searches} >= {"image", "hash"}
    assert any(event["reason"] == "bait photo from a partner" for event in searches)


def test_a_search_shows_only_cases_the_key_may_see_and_counts_the_rest(client, keys, new_case, scoped_key):
    mine, theirs = unique_force(), unique_force()
    picture = synthetic_picture(fresh_seed())
    own, other = new_case(police_force=mine), new_case(police_force=theirs)
    upload(client, own, ("a.jpg", encoded(picture), "image/jpeg"))
    upload(client, other, ("b.jpg", encoded(picture, quality=70), "image/jpeg"))
    pdq_hash = analyst_evidence(client, keys, own["reference"])[0]["pdq_hash"]
    answer = client.post("/v1/evidence/matches", headers=bearer(scoped_key(mine)), json={"pdq_hash": pdq_hash})
    assert [m["reference"] for m in answer.json()["matches"]] == [own["reference"]]
    assert answer.json()["not_shown"] == 1
    assert links(client, scoped_key(mine), own["reference"]) == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"pdq_hash": "abc"}, "pdq_hash"),
        ({"pdq_hash": "g" * 64}, "pdq_hash"),
        ({"pdq_hash": "0" * 64, "max_distance": 32}, "max_distance"),
        ({"pdq_hash": "0" * 64, "max_distance": False}, "max_distance"),
        ({"pdq_hash": "0" * 64, "max_distance": "4"}, "max_distance"),
        ({"pdq_hash": "0" * 64, "extra": 1}, "extra"),
        ({}, "pdq_hash"),
    ],
)
def test_a_bad_search_is_a_422_naming_the_field(client, keys, body, field):
    response = client.post("/v1/evidence/matches", headers=bearer(keys.analyst), json=body)
    assert response.status_code == 422, response.text
    assert field in [error["field"] for error in response.json()["errors"]]


def test_a_file_that_is_not_an_image_is_a_422_and_only_analysts_search(client, keys):
    response = client.post("/v1/evidence/matches", headers=bearer(keys.analyst), files={"file": ("x.txt", TEXT)})
    assert response.status_code == 422 and response.json()["errors"][0]["field"] == "file"
    for who in ("submitter", "admin"):
        denied = client.post("/v1/evidence/matches", headers=bearer(getattr(keys, who)), json={"pdq_hash": "0" * 64})
        assert denied.status_code == 403
    assert client.post("/v1/evidence/matches", headers=bearer(keys.analyst), content=b"x").status_code == 415


def test_hashing_keeps_no_copy_or_preview_of_the_image(client, keys, new_case, settings):
    evidence_dir = settings.resolved_evidence_dir
    before = {path for path in evidence_dir.rglob("*") if path.is_file()}
    case = new_case()
    upload(client, case, ("a.jpg", encoded(synthetic_picture(fresh_seed())), "image/jpeg"))
    client.post(
        "/v1/evidence/matches",
        headers=bearer(keys.analyst),
        files={"file": ("q.jpg", encoded(synthetic_picture(fresh_seed())), "image/jpeg")},
    )
    added = {path for path in evidence_dir.rglob("*") if path.is_file()} - before
    assert len(added) == 1  # the evidence object itself, nothing derived from it, nothing for the search
