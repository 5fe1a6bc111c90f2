"""Video evidence gets PDQ hashes of its still frames at intake (vPDQ, the optional `video` extra that
`make test` installs); a re-encoded copy of a video, or a frame of it posted as an image, links the
cases. On a local folder and on S3 over HTTP, with SQLite and PostgreSQL; synthetic videos only."""

from __future__ import annotations

import hashlib
import random
import tempfile

import httpx
import pytest

from service.storage.video_hashes import VideoFrameHasher, vpdq_installed
from tests.support.cases import MINIMAL_CASE
from tests.support.database import count_rows, query_rows
from tests.support.evidence import upload as post_evidence
from tests.support.http import bearer
from tests.support.report_form import MINIMAL, form_token, send
from tests.support.videos import expensive_video, re_encoded, still_frame, synthetic_video


def test_make_test_has_vpdq_installed():
    # Every test below needs it: `make test` installs the `video` extra, so none of them is skipped.
    assert vpdq_installed(), "pip install '.[video]' (make test does)"


def fresh_seed() -> int:
    return random.SystemRandom().randrange(10**9)


@pytest.fixture
def case(evidence_client, evidence_keys):
    def create() -> dict:
        response = evidence_client.post("/v1/cases", json=MINIMAL_CASE, headers=bearer(evidence_keys.submitter))
        assert response.status_code == 201, response.text
        return response.json()

    return create


def upload(client, created: dict, *files: tuple[str, bytes, str]) -> list[dict]:
    response = post_evidence(client, created, *files)
    assert response.status_code == 201, response.text
    return response.json()["evidence"]


def links(client, key: str, reference: str) -> list[dict]:
    response = client.get(f"/v1/cases/{reference}/links", headers=bearer(key))
    assert response.status_code == 200, response.text
    return response.json()["links"]


def frames_of(app, evidence_id: str) -> list:
    return query_rows(
        app.state.engine,
        "SELECT seconds, pdq_hash, quality FROM video_frame_hash WHERE evidence_id = :id ORDER BY seconds",
        id=evidence_id,
    )


def analyst_evidence(client, keys, reference: str) -> list[dict]:
    response = client.get(f"/v1/cases/{reference}/evidence", headers=bearer(keys.analyst))
    assert response.status_code == 200, response.text
    return response.json()["evidence"]


def test_a_video_gets_its_frames_hashed_once_a_second_with_their_quality(
    evidence_client, evidence_app, evidence_keys, case
):
    created = case()
    (video,) = upload(evidence_client, created, ("clip.mp4", synthetic_video(fresh_seed()), "video/mp4"))
    assert video["content_type"] == "video/mp4"
    frames = frames_of(evidence_app, video["id"])
    assert [frame.seconds for frame in frames] == [0.0, 1.0, 2.0, 3.0]
    assert all(len(frame.pdq_hash) == 64 and 0 <= frame.quality <= 100 for frame in frames)
    assert max(frame.quality for frame in frames) >= 50
    (listed,) = analyst_evidence(evidence_client, evidence_keys, created["reference"])
    assert (listed["video_frames"], listed["video_hashed_in_part"]) == (4, False)
    assert listed["pdq_hash"] is None


def test_a_re_encoded_rescaled_copy_of_a_video_links_the_cases_and_an_unrelated_one_does_not(
    evidence_client, evidence_keys, case
):
    original_video = synthetic_video(fresh_seed())
    copy_video = re_encoded(original_video, scale="480:270", container="mkv", quality=["-crf", "32"])
    first, second, unrelated = case(), case(), case()
    (original,) = upload(evidence_client, first, ("a.mp4", original_video, "video/mp4"))
    (copy,) = upload(evidence_client, second, ("b.mkv", copy_video, "video/x-matroska"))
    upload(evidence_client, unrelated, ("c.mp4", synthetic_video(fresh_seed()), "video/mp4"))

    (link,) = links(evidence_client, evidence_keys.analyst, second["reference"])
    assert link["reference"] == first["reference"] and link["link_types"] == ["image"]
    (match,) = link["images"]  # one per pair of files, at their nearest frames
    assert (match["evidence_id"], match["matched_evidence_id"]) == (copy["id"], original["id"])
    assert 0 <= match["distance"] <= 31
    assert links(evidence_client, evidence_keys.analyst, unrelated["reference"]) == []


def test_a_frame_posted_as_an_image_links_to_the_video_either_way_round(evidence_client, evidence_keys, case):
    video = synthetic_video(fresh_seed())
    with_video, with_image, image_first, video_after = case(), case(), case(), case()
    (kept_video,) = upload(evidence_client, with_video, ("clip.mp4", video, "video/mp4"))
    (image,) = upload(evidence_client, with_image, ("still.png", still_frame(video, at_seconds=2), "image/png"))
    (link,) = links(evidence_client, evidence_keys.analyst, with_video["reference"])
    assert link["reference"] == with_image["reference"]
    assert (link["images"][0]["evidence_id"], link["images"][0]["matched_evidence_id"]) == (
        kept_video["id"],
        image["id"],
    )
    assert link["images"][0]["distance"] <= 31

    other = synthetic_video(fresh_seed())
    upload(evidence_client, image_first, ("still.png", still_frame(other, at_seconds=1), "image/png"))
    upload(evidence_client, video_after, ("clip.webm", other, "video/mp4"))
    assert [item["reference"] for item in links(evidence_client, evidence_keys.analyst, image_first["reference"])] == [
        video_after["reference"]
    ]


def test_an_analyst_search_by_a_frame_finds_the_video(evidence_client, evidence_keys, case):
    video = synthetic_video(fresh_seed())
    (kept,) = upload(evidence_client, case(), ("clip.mp4", video, "video/mp4"))
    found = evidence_client.post(
        "/v1/evidence/matches",
        headers={**bearer(evidence_keys.analyst), "X-Access-Reason": "bait video from a partner"},
        files={"file": ("q.png", still_frame(video, at_seconds=3), "image/png")},
    )
    assert found.status_code == 200, found.text
    assert [match["evidence_id"] for match in found.json()["matches"]] == [kept["id"]]


def test_a_direct_upload_of_a_video_is_hashed_when_completed(evidence_client, evidence_app, case):
    created = case()
    video = synthetic_video(fresh_seed(), seconds=2)
    ticket = evidence_client.post(
        f"/v1/cases/{created['reference']}/evidence/uploads",
        headers=bearer(created["reporter_token"]),
        json={"filename": "clip.mp4", "size": len(video), "sha256": hashlib.sha256(video).hexdigest()},
    ).json()
    sender = httpx if ticket["url"].startswith("http://127.0.0.1") else evidence_client
    assert sender.request(ticket["method"], ticket["url"], content=video, headers=ticket["headers"]).status_code in (
        200,
        204,
    )
    completed = evidence_client.post(
        f"/v1/cases/{created['reference']}/evidence/uploads/{ticket['id']}/complete",
        headers=bearer(created["reporter_token"]),
    )
    assert completed.status_code == 201, completed.text
    assert [frame.seconds for frame in frames_of(evidence_app, completed.json()["id"])] == [0.0, 1.0]


def test_a_video_that_can_not_be_decoded_is_kept_with_no_frames(evidence_client, evidence_app, evidence_keys, case):
    created = case()
    broken = synthetic_video(fresh_seed())[:4000]  # the start of an MP4: typed as video, not playable
    (kept,) = upload(evidence_client, created, ("cut.mp4", broken, "video/mp4"))
    assert kept["size"] == 4000
    assert frames_of(evidence_app, kept["id"]) == []
    (listed,) = analyst_evidence(evidence_client, evidence_keys, created["reference"])
    assert (listed["video_frames"], listed["video_hashed_in_part"]) == (None, None)


def test_hashing_a_video_leaves_no_copy_and_no_decoded_frame_behind(
    evidence_client, evidence_app, case, tmp_path, monkeypatch
):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where the private folder for the video goes
    upload(evidence_client, case(), ("clip.mp4", synthetic_video(fresh_seed(), seconds=2), "video/mp4"))
    assert list(tmp_path.iterdir()) == []
    if evidence_app.state.settings.evidence_store == "local":
        objects = [path for path in evidence_app.state.settings.resolved_evidence_dir.rglob("*") if path.is_file()]
        assert all(path.suffix == "" for path in objects)  # evidence objects only: no frames, no previews


# --- the limits, on the hasher itself ---------------------------------------------------------------


def test_at_most_the_frame_limit_is_hashed_from_the_start_of_a_longer_video(evidence_app):
    store = evidence_app.state.objects
    key = _stored(store, synthetic_video(fresh_seed(), seconds=6))
    fingerprint = VideoFrameHasher(max_frames=3, cpu_seconds=20).fingerprint(store, key)
    assert [frame.seconds for frame in fingerprint.frames] == [0.0, 1.0, 2.0]
    assert not fingerprint.cut_short


def test_a_video_past_the_cpu_limit_is_hashed_in_part_not_refused(evidence_app):
    store = evidence_app.state.objects
    key = _stored(store, expensive_video())
    # One CPU second: the first span (one second of video) is hashed, the whole four are not.
    fingerprint = VideoFrameHasher(max_frames=120, cpu_seconds=1, first_span_seconds=1).fingerprint(store, key)
    assert fingerprint is not None and fingerprint.cut_short
    assert [frame.seconds for frame in fingerprint.frames] == [0.0]


def _stored(store, data: bytes) -> str:
    key = store.new_evidence_key()
    upload = store.start_upload(key)
    upload.write(data)
    upload.complete()
    return key


def test_video_matching_is_off_without_vpdq_or_when_the_setting_says_so(evidence_app):
    settings = evidence_app.state.settings
    assert VideoFrameHasher.from_settings(settings) is not None
    assert VideoFrameHasher.from_settings(settings.model_copy(update={"video_matching": False})) is None


def test_a_video_sent_with_the_report_form_is_hashed_with_the_new_case(client, app):
    video = synthetic_video(fresh_seed(), seconds=2)
    sent = send(
        client, form_token(client.get("/report").text), MINIMAL, files=[("evidence", ("clip.mp4", video, "video/mp4"))]
    )
    assert sent.status_code == 303, sent.text
    sha = hashlib.sha256(video).hexdigest()
    assert (
        count_rows(
            app.state.engine,
            "video_frame_hash",
            "evidence_id IN (SELECT id FROM evidence WHERE sha256 = :sha)",
            sha=sha,
        )
        == 2
    )
