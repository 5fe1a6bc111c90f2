
WITH shared AS (
    SELECT 1 FROM identifier WHERE normalized = ANY($1::text[]) LIMIT 1
), live AS (
    SELECT 1 WHERE $2::text IS NULL OR EXISTS (SELECT 1 FROM api_key WHERE id = $2::text AND revoked_at IS NULL)
), claim AS (
    INSERT INTO idempotency_record (scope, key_sha256, request_sha256, status_code, response_sealed, created_at)
    SELECT $3::text, $4::text, $5::text, 201, $6::bytea, $7::timestamptz
    WHERE $4::text IS NOT NULL AND NOT EXISTS (SELECT 1 FROM shared) AND EXISTS (SELECT 1 FROM live)
    ON CONFLICT (scope, key_sha256) DO NOTHING
    RETURNING id
), new_case AS (
    INSERT INTO "case" (reference, reporter_token_sha256, submitted_by_key_id, status, priority, police_force,
                        flags, next_steps, submission, created_at, updated_at, victim_was_under_18)
    SELECT $8::text, $9::text, $2::text, 'received', $10::text, $11::text, $12::jsonb, $13::jsonb, $14::jsonb,
           $7::timestamptz, $7::timestamptz, $25::boolean
    WHERE NOT EXISTS (SELECT 1 FROM shared) AND EXISTS (SELECT 1 FROM live)
      AND ($4::text IS NULL OR EXISTS (SELECT 1 FROM claim))
    RETURNING id
), flags AS (
    INSERT INTO case_flag (case_id, code) SELECT new_case.id, code FROM new_case, unnest($15::text[]) AS code
), identifiers AS (
    INSERT INTO identifier (case_id, type, value, normalized, platform, handle, created_at)
    SELECT new_case.id, kept.type, kept.value, kept.normalized, kept.platform, kept.handle, $7::timestamptz
    FROM new_case, unnest($16::text[], $17::text[], $1::text[], $18::text[], $19::text[])
         AS kept(type, value, normalized, platform, handle)
), audit AS (
    INSERT INTO audit_event (at, actor, action, case_id, request_id, client_request_id)
    SELECT $7::timestamptz, $20::text, $21::text, new_case.id, $22::text, $27::text FROM new_case
), alert AS (
    INSERT INTO webhook_delivery (event, payload, created_at, attempts, next_attempt_at)
    SELECT $23::text, $24::jsonb, $7::timestamptz, 0, $7::timestamptz FROM new_case WHERE $24::jsonb IS NOT NULL
), cluster AS (
    -- linked to no other case, it is a cluster of its own (service.storage.clusters.join_clusters)
    INSERT INTO cluster (size, created_at, updated_at) SELECT 1, $7::timestamptz, $7::timestamptz FROM new_case
    RETURNING id
), member AS (
    INSERT INTO cluster_member (case_id, cluster_id, police_force, child_victim, money, reported_at)
    SELECT new_case.id, cluster.id, $11::text, $25::boolean, $26::jsonb, $7::timestamptz FROM new_case, cluster
)
SELECT (SELECT id FROM new_case) AS case_id,
       EXISTS (SELECT 1 FROM shared) AS repeats_identifiers,
       EXISTS (SELECT 1 FROM live) AS key_live
