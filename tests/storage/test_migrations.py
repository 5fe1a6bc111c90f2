"""Migrations give exactly the models' schema on both databases; the audit log is append-only."""

from __future__ import annotations

import json
import random

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlmodel import SQLModel

import service.storage.models  # noqa: F401
from service.cli import upgrade_database
from service.domain.perceptual import ImageMatchPolicy, PdqHash
from service.storage.database import session_scope
from service.storage.image_hashes import find_similar, hash_columns
from service.storage.models import VideoFrameHash
from tests.support.apps import BACKENDS, database_at, fresh_database_url
from tests.support.database import database_engine, query_rows


@pytest.fixture(params=BACKENDS)
def migrated_url(request, tmp_path_factory) -> str:
    return fresh_database_url(request.param, request, tmp_path_factory)


def test_upgrade_head_on_an_empty_database_matches_the_models(migrated_url):
    with database_engine(migrated_url) as engine, engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, SQLModel.metadata)
    assert differences == []


def test_audit_rows_can_be_added_but_never_changed_or_removed(migrated_url):
    with database_engine(migrated_url) as engine:
        with engine.begin() as connection:
            connection.execute(
                sa.text("INSERT INTO audit_event (at, actor, action) VALUES (CURRENT_TIMESTAMP, 'k', 'x')")
            )
        for statement in ["UPDATE audit_event SET action = 'y'", "DELETE FROM audit_event"]:
            with pytest.raises(sa.exc.DatabaseError, match="append-only"), engine.begin() as connection:
                connection.execute(sa.text(statement))
        with engine.connect() as connection:
            assert connection.execute(sa.text("SELECT action FROM audit_event")).scalars().all() == ["x"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_cases_stored_before_flag_rows_existed_get_them_on_upgrade(backend, request, tmp_path_factory):
    url = database_at("0002", backend, request, tmp_path_factory)
    with database_engine(url) as engine, engine.begin() as connection:
        connection.execute(
            sa.text(
                'INSERT INTO "case" (reference, reporter_token_sha256, status, priority, flags, next_steps, '
                "submission, "
                "created_at, updated_at) VALUES ('AAAA-AAAA-AAAA', 'h', 'received', 'urgent', "
                """'[{"code": "under_18", "reason": "r"}, {"code": "self_harm_risk", "reason": "r"}]', '[]', '{}', """
                "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
            )
        )
    upgrade_database(url)
    codes = [row.code for row in query_rows(url, "SELECT code FROM case_flag ORDER BY code")]
    assert codes == ["self_harm_risk", "under_18"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_upgrade_keeps_a_child_case_a_child_case_and_gives_back_a_lost_under_18(backend, request, tmp_path_factory):
    url = database_at("0006", backend, request, tmp_path_factory)
    insert = sa.text(
        'INSERT INTO "case" (reference, reporter_token_sha256, status, priority, flags, next_steps, submission, '
        "created_at, updated_at) VALUES (:reference, :reference, 'received', :priority, :flags, :steps, :submission, "
        "'2020-06-01 12:00:00+00:00', '2024-06-01 12:00:00+00:00')"
    )
    steps = '["support-services", "dont-panic"]'
    self_harm = '[{"code": "self_harm_risk", "reason": "r"}]'
    with database_engine(url) as engine, engine.begin() as connection:
        for reference, priority, flags, submission in [
            # 17 when reported in 2020; re-decided after the birthday, the flag was lost.
            ("LOST", "urgent", self_harm, '{"victim": {"date_of_birth": "2003-01-01"}}'),
            ("KEPT", "urgent", '[{"code": "under_18", "reason": "r"}]', '{"victim": {"age_band": "16_17"}}'),
            ("ADULT", "normal", "[]", '{"victim": {"date_of_birth": "2002-05-31"}}'),
        ]:
            values = {"reference": reference, "priority": priority, "flags": flags, "submission": submission}
            connection.execute(insert, {**values, "steps": steps})
    upgrade_database(url)
    columns = "reference, victim_was_under_18, priority, flags, next_steps"
    rows = query_rows(url, f'SELECT {columns} FROM "case" ORDER BY reference')  # noqa: S608 - fixed names
    flag_rows = [row.code for row in query_rows(url, "SELECT code FROM case_flag ORDER BY code")]
    by_reference = {row[0]: row for row in rows}
    assert [bool(by_reference[name][1]) for name in ("LOST", "KEPT", "ADULT")] == [True, True, False]
    lost = by_reference["LOST"]
    flags = lost[3] if isinstance(lost[3], list) else json.loads(lost[3])
    steps_after = lost[4] if isinstance(lost[4], list) else json.loads(lost[4])
    assert [flag["code"] for flag in flags] == ["under_18", "self_harm_risk"]
    assert lost[2] == "urgent" and steps_after == ["support-services", "under-18", "dont-panic"]
    assert "under_18" in flag_rows


@pytest.mark.parametrize("backend", BACKENDS)
def test_upgrade_works_out_the_totals_of_clusters_kept_before(backend, request, tmp_path_factory):
    url = database_at("0012", backend, request, tmp_path_factory)
    case = sa.text(
        'INSERT INTO "case" (id, reference, reporter_token_sha256, status, priority, flags, next_steps, submission, '
        "created_at, updated_at) VALUES (:id, :reference, :reference, 'received', 'normal', '[]', '[]', '{}', "
        "'2026-01-01 00:00:00+00:00', '2026-01-01 00:00:00+00:00')"
    )
    member = sa.text(
        "INSERT INTO cluster_member (case_id, cluster_id, police_force, child_victim, money, reported_at, duplicate) "
        "VALUES (:case_id, :cluster_id, :force, :child, :money, :at, :duplicate)"
    )
    members = [  # cluster 1: three cases in two forces, one a duplicate; cluster 2: one case
        (1, 1, "cleveland", True, '{"GBP": "100.50"}', "2026-01-02 10:00:00+00:00", False),
        (2, 1, "cleveland", False, '{"GBP": "20", "USD": "5"}', "2026-01-05 10:00:00+00:00", False),
        (3, 1, None, True, '{"GBP": "100.50"}', "2026-01-03 10:00:00+00:00", True),
        (4, 2, "north-yorkshire", False, "{}", "2026-01-04 10:00:00+00:00", False),
    ]
    with database_engine(url) as engine, engine.begin() as connection:
        for cluster_id, size in ((1, 3), (2, 1)):
            connection.execute(
                sa.text("INSERT INTO cluster (id, size, created_at, updated_at) VALUES (:id, :size, :at, :at)"),
                {"id": cluster_id, "size": size, "at": "2026-01-01 00:00:00+00:00"},
            )
        for case_id, cluster_id, force, child, money, at, duplicate in members:
            connection.execute(case, {"id": case_id, "reference": f"CASE-{case_id}"})
            connection.execute(
                member,
                {"case_id": case_id, "cluster_id": cluster_id, "force": force, "child": child, "money": money}
                | {"at": at, "duplicate": duplicate},
            )
    upgrade_database(url)
    (cluster,) = query_rows(
        url, "SELECT size, victims, child_victims, money, first_seen, last_seen FROM cluster WHERE id = 1"
    )
    money = cluster[3] if isinstance(cluster[3], dict) else json.loads(cluster[3])
    assert (cluster[0], cluster[1], cluster[2], money) == (3, 2, 1, {"GBP": "120.50", "USD": "5"})
    assert (str(cluster[4])[:10], str(cluster[5])[:10]) == ("2026-01-02", "2026-01-05")
    forces = query_rows(
        url,
        "SELECT cluster_id, police_force, cases, victims, child_victims FROM cluster_force "
        "ORDER BY cluster_id, police_force",
    )
    assert [tuple(row) for row in forces] == [(1, "", 1, 0, 0), (1, "cleveland", 2, 2, 1)]


@pytest.mark.parametrize("backend", BACKENDS)
def test_upgrade_cuts_stored_image_hashes_into_the_wider_chunks_they_are_looked_up_by(
    backend, request, tmp_path_factory
):
    url = database_at("0013", backend, request, tmp_path_factory)
    stored = PdqHash(random.Random(14).getrandbits(256))
    chunk_columns = ", ".join(f"chunk_{position:02d}" for position in range(16))
    sixteen_bit_chunks = [(stored.value >> (256 - 16 * (position + 1))) & 0xFFFF for position in range(16)]
    with database_engine(url) as engine, engine.begin() as connection:
        connection.execute(
            sa.text(
                'INSERT INTO "case" (id, reference, reporter_token_sha256, status, priority, flags, next_steps, '
                "submission, created_at, updated_at) VALUES (1, 'IMAGE', 'IMAGE', 'received', 'normal', '[]', '[]', "
                "'{}', '2026-01-01 00:00:00+00:00', '2026-01-01 00:00:00+00:00')"
            )
        )
        connection.execute(
            sa.text(
                "INSERT INTO evidence (id, case_id, object_key, filename, content_type, size, sha256, received_at, "
                "received_by, pdq_hash, pdq_quality) VALUES ('e1', 1, 'k1', 'bait.jpg', 'image/jpeg', 1, :sha, "
                "'2026-01-01 00:00:00+00:00', 'test', :hash, 90)"
            ),
            {"sha": "0" * 64, "hash": stored.hex},
        )
        values = ", ".join(str(chunk) for chunk in sixteen_bit_chunks)
        connection.execute(
            sa.text(
                f"INSERT INTO image_hash (evidence_id, case_id, pdq_hash, quality, {chunk_columns}) "  # noqa: S608
                f"VALUES ('e1', 1, :hash, 90, {values})"
            ),
            {"hash": stored.hex},
        )
    upgrade_database(url)
    (row,) = query_rows(url, "SELECT * FROM image_hash")
    assert tuple(row._mapping[f"chunk_{position:02d}"] for position in range(11)) == stored.chunks()
    assert "chunk_11" not in row._mapping
    near = PdqHash(stored.value ^ ((1 << 31) - 1))  # 31 bits away, in the low chunks
    with database_engine(url) as engine, session_scope(engine) as session:
        (found,) = find_similar(session, near, ImageMatchPolicy())
    assert (found.evidence_id, found.distance) == ("e1", 31)


@pytest.mark.parametrize("backend", BACKENDS)
def test_upgrade_keeps_audit_rows_and_adds_the_clients_request_id_beside_the_servers(
    backend, request, tmp_path_factory
):
    url = database_at("0014", backend, request, tmp_path_factory)
    with database_engine(url) as engine, engine.begin() as connection:
        connection.execute(
            sa.text(
                "INSERT INTO audit_event (at, actor, action, request_id) "
                "VALUES (CURRENT_TIMESTAMP, 'key:old', 'case.read', 'abc')"
            )
        )
    upgrade_database(url)
    with database_engine(url) as engine, engine.begin() as connection:
        connection.execute(
            sa.text(
                "INSERT INTO audit_event (at, actor, action, request_id, client_request_id) "
                "VALUES (CURRENT_TIMESTAMP, 'key:new', 'case.read', 'def', 'theirs')"
            )
        )
    rows = query_rows(url, "SELECT actor, request_id, client_request_id FROM audit_event ORDER BY id")
    assert [tuple(row) for row in rows] == [("key:old", "abc", None), ("key:new", "def", "theirs")]
    with (  # still append-only after the new column
        database_engine(url) as engine,
        pytest.raises(sa.exc.DatabaseError, match="append-only"),
        engine.begin() as connection,
    ):
        connection.execute(sa.text("UPDATE audit_event SET client_request_id = 'x'"))


@pytest.mark.parametrize("backend", BACKENDS)
def test_upgrade_makes_one_deployment_id_and_keeps_the_object_keys_of_evidence_kept_before(
    backend, request, tmp_path_factory
):
    url = database_at("0015", backend, request, tmp_path_factory)
    with database_engine(url) as engine, engine.begin() as connection:
        connection.execute(
            sa.text(
                'INSERT INTO "case" (reference, reporter_token_sha256, status, priority, flags, next_steps, '
                "submission, created_at, updated_at, victim_was_under_18) VALUES ('OLDE-OLDE-OLDE', 'h', "
                "'received', 'normal', '[]', '[]', '{}', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, false)"
            )
        )
        connection.execute(
            sa.text(
                "INSERT INTO evidence (id, case_id, object_key, filename, content_type, size, sha256, received_at, "
                "received_by) SELECT 'e1', id, 'evidence/0123abcd', 'a.png', 'image/png', 3, 'aa', "
                "CURRENT_TIMESTAMP, 'key:x' FROM \"case\""
            )
        )
    upgrade_database(url)
    (deployment,) = query_rows(url, "SELECT id FROM deployment")
    assert len(deployment.id) == 32 and deployment.id.isalnum()
    assert [row.object_key for row in query_rows(url, "SELECT object_key FROM evidence")] == ["evidence/0123abcd"]
    upgrade_database(url)  # again: nothing changes, the id is made once
    assert [row.id for row in query_rows(url, "SELECT id FROM deployment")] == [deployment.id]
    other = fresh_database_url(backend, request, tmp_path_factory)
    assert query_rows(other, "SELECT id FROM deployment")[0].id != deployment.id  # each database its own


@pytest.mark.parametrize("backend", BACKENDS)
def test_upgrade_indexes_force_totals_in_harm_order_keeping_them(backend, request, tmp_path_factory):
    url = database_at("0016", backend, request, tmp_path_factory)
    with database_engine(url) as engine, engine.begin() as connection:
        connection.execute(
            sa.text(
                "INSERT INTO cluster (id, size, victims, child_victims, money, created_at, updated_at) "
                "VALUES (7, 2, 2, 1, '{}', '2026-01-01 00:00:00+00:00', '2026-01-01 00:00:00+00:00')"
            )
        )
        connection.execute(
            sa.text(
                "INSERT INTO cluster_force (cluster_id, police_force, cases, victims, child_victims, money, "
                "first_seen, last_seen) VALUES (7, 'cleveland', 2, 2, 1, '{\"GBP\": \"5\"}', "
                "'2026-01-01 00:00:00+00:00', '2026-01-02 00:00:00+00:00')"
            )
        )
    upgrade_database(url)
    with database_engine(url) as engine:
        indexes = {index["name"]: index["column_names"] for index in sa.inspect(engine).get_indexes("cluster_force")}
    assert indexes["ix_cluster_force_by_harm"] == [
        "police_force",
        "child_victims",
        "victims",
        "last_seen",
        "cluster_id",
    ]
    rows = query_rows(url, "SELECT cluster_id, police_force, cases, child_victims FROM cluster_force")
    assert [tuple(row) for row in rows] == [(7, "cleveland", 2, 1)]


@pytest.mark.parametrize("backend", BACKENDS)
def test_upgrade_gives_keys_kept_before_no_permission_to_share_without_consent(backend, request, tmp_path_factory):
    url = database_at("0017", backend, request, tmp_path_factory)
    with database_engine(url) as engine, engine.begin() as connection:
        connection.execute(
            sa.text(
                "INSERT INTO api_key (id, name, role, secret_sha256, can_view_child_evidence, publishable, "
                "created_at) VALUES ('k1', 'old analyst', 'analyst', 'h', true, false, CURRENT_TIMESTAMP)"
            )
        )
    upgrade_database(url)
    rows = query_rows(url, "SELECT id, can_view_child_evidence, can_share_without_consent FROM api_key")
    assert [(row.id, bool(row.can_view_child_evidence), bool(row.can_share_without_consent)) for row in rows] == [
        ("k1", True, False)
    ]


@pytest.mark.parametrize("backend", BACKENDS)
def test_upgrade_adds_video_frame_hashes_beside_the_image_hashes_kept_before(backend, request, tmp_path_factory):
    url = database_at("0018", backend, request, tmp_path_factory)
    stored = PdqHash(random.Random(19).getrandbits(256))
    chunk_columns = ", ".join(f"chunk_{position:02d}" for position in range(11))
    with database_engine(url) as engine, engine.begin() as connection:
        connection.execute(
            sa.text(
                'INSERT INTO "case" (id, reference, reporter_token_sha256, status, priority, flags, next_steps, '
                "submission, created_at, updated_at) VALUES (1, 'VIDEO', 'VIDEO', 'received', 'normal', '[]', '[]', "
                "'{}', '2026-01-01 00:00:00+00:00', '2026-01-01 00:00:00+00:00')"
            )
        )
        for evidence_id, content_type in [("image", "image/png"), ("video", "video/mp4")]:
            connection.execute(
                sa.text(
                    "INSERT INTO evidence (id, case_id, object_key, filename, content_type, size, sha256, "
                    "received_at, received_by) VALUES (:id, 1, :id, 'f', :type, 1, :sha, "
                    "'2026-01-01 00:00:00+00:00', 'test')"
                ),
                {"id": evidence_id, "type": content_type, "sha": "0" * 64},
            )
        connection.execute(
            sa.text(
                f"INSERT INTO image_hash (evidence_id, case_id, pdq_hash, quality, {chunk_columns}) "  # noqa: S608
                f"VALUES ('image', 1, :hash, 90, {', '.join(map(str, stored.chunks()))})"
            ),
            {"hash": stored.hex},
        )
    upgrade_database(url)
    with database_engine(url) as engine, session_scope(engine) as session:
        frame = PdqHash(stored.value ^ 0b111)  # a video frame three bits from the image
        session.execute(
            sa.insert(VideoFrameHash.__table__),
            [{"evidence_id": "video", "case_id": 1, "seconds": 2.0, **hash_columns(frame.hex, 80)}],
        )
        session.commit()
        found = find_similar(session, stored, ImageMatchPolicy())
    assert [(match.evidence_id, match.distance) for match in found] == [("image", 0), ("video", 3)]
    with database_engine(url) as engine, engine.begin() as connection:
        connection.execute(sa.text("DELETE FROM evidence WHERE id = 'video'"))
    assert query_rows(url, "SELECT evidence_id FROM video_frame_hash") == []  # goes with its evidence


def _plan(connection, backend: str, query: str) -> str:
    """How the database would run `query`: PostgreSQL's plan with sequential scans ruled out (a tiny table
    is otherwise read whole), SQLite's query plan."""
    if backend == "postgres":
        connection.execute(sa.text("SET LOCAL enable_seqscan = off"))
        return "\n".join(connection.execute(sa.text(f"EXPLAIN {query}")).scalars())
    return "\n".join(str(row[-1]) for row in connection.execute(sa.text(f"EXPLAIN QUERY PLAN {query}")))


@pytest.mark.parametrize("backend", BACKENDS)
def test_upgrade_leaves_cases_without_a_force_and_identifiers_without_a_handle_out_of_their_indexes(
    backend, request, tmp_path_factory
):
    url = database_at("0019", backend, request, tmp_path_factory)
    with database_engine(url) as engine, engine.begin() as connection:
        for case_id, force in ((1, "cleveland"), (2, None)):
            connection.execute(
                sa.text(
                    'INSERT INTO "case" (id, reference, reporter_token_sha256, status, priority, police_force, flags, '
                    "next_steps, submission, created_at, updated_at) VALUES (:id, :reference, :token, 'received', "
                    "'standard', :force, '[]', '[]', '{}', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
                ),
                {"id": case_id, "reference": f"AAAA-AAAA-AAA{case_id}", "token": f"t{case_id}", "force": force},
            )
        for case_id, kind, normalized, handle in ((1, "username", "instagram:sam", "sam"), (2, "mtcn", "123", None)):
            connection.execute(
                sa.text(
                    "INSERT INTO identifier (case_id, type, value, normalized, handle, created_at) "
                    "VALUES (:case_id, :kind, :normalized, :normalized, :handle, CURRENT_TIMESTAMP)"
                ),
                {"case_id": case_id, "kind": kind, "normalized": normalized, "handle": handle},
            )
    upgrade_database(url)
    with database_engine(url) as engine, engine.begin() as connection:
        if backend == "postgres":
            definitions = dict(connection.execute(sa.text("SELECT indexname, indexdef FROM pg_indexes")).all())
        else:
            listed = connection.execute(sa.text("SELECT name, sql FROM sqlite_master WHERE sql IS NOT NULL"))
            definitions = dict(listed.all())
        assert "police_force IS NOT NULL" in definitions["ix_case_police_force_created_at"]
        assert "handle IS NOT NULL" in definitions["ix_identifier_handle"]
        # Queries by force (one, or those of a key's scope) and by handle still read them.
        for query, index in (
            ("SELECT id FROM \"case\" WHERE police_force = 'cleveland'", "ix_case_police_force_created_at"),
            ("SELECT id FROM \"case\" WHERE police_force IN ('cleveland', 'kent')", "ix_case_police_force_created_at"),
            ("SELECT id FROM identifier WHERE handle = 'sam'", "ix_identifier_handle"),
        ):
            assert index in _plan(connection, backend, query), query
    assert [row.id for row in query_rows(url, "SELECT id FROM \"case\" WHERE police_force = 'cleveland'")] == [1]
    assert [row.id for row in query_rows(url, 'SELECT id FROM "case" WHERE police_force IS NULL')] == [2]
    assert [row.case_id for row in query_rows(url, "SELECT case_id FROM identifier WHERE handle = 'sam'")] == [1]


@pytest.mark.parametrize("backend", BACKENDS)
def test_upgrade_counts_the_frames_of_videos_hashed_before(backend, request, tmp_path_factory):
    url = database_at("0020", backend, request, tmp_path_factory)
    with database_engine(url) as engine, engine.begin() as connection:
        connection.execute(
            sa.text(
                'INSERT INTO "case" (id, reference, reporter_token_sha256, status, priority, flags, next_steps, '
                "submission, created_at, updated_at) VALUES (1, 'VIDEO', 'VIDEO', 'received', 'normal', '[]', '[]', "
                "'{}', '2026-01-01 00:00:00+00:00', '2026-01-01 00:00:00+00:00')"
            )
        )
        for evidence_id, content_type in [("video", "video/mp4"), ("text", "text/plain")]:
            connection.execute(
                sa.text(
                    "INSERT INTO evidence (id, case_id, object_key, filename, content_type, size, sha256, "
                    "received_at, received_by) VALUES (:id, 1, :id, 'f', :type, 1, :sha, "
                    "'2026-01-01 00:00:00+00:00', 'test')"
                ),
                {"id": evidence_id, "type": content_type, "sha": "0" * 64},
            )
        for seconds in (0.0, 1.0, 2.0):
            frame = PdqHash(random.Random(seconds).getrandbits(256))
            connection.execute(
                sa.insert(VideoFrameHash.__table__),
                [{"evidence_id": "video", "case_id": 1, "seconds": seconds, **hash_columns(frame.hex, 90)}],
            )
    upgrade_database(url)
    rows = query_rows(url, "SELECT id, video_frames, video_hashed_in_part FROM evidence ORDER BY id")
    assert [tuple(row) for row in rows] == [("text", None, None), ("video", 3, None)]
