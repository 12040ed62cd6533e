
-- ===========================================================================
-- Migrations: the migration log (src/migration_log.c, src/migration_run.c)
-- and batched backfills (src/backfill.c).
-- ===========================================================================

-- Append-only history: one row per action.  An "apply" row goes RUNNING ->
-- SUCCESS | FAILED; a "rollback" row (rollback_of = the apply row it undoes)
-- is ROLLED_BACK | ROLLBACK_FAILED (and RUNNING before that when an
-- external runner records it with log_rollback_start).  Rows are never deleted, and a row may
-- change only while it is RUNNING (trigger migration_log_guard).
CREATE TABLE iact.migration_log (
    id                  bigserial PRIMARY KEY,
    version             text NOT NULL CHECK (version <> ''),
    description         text NOT NULL,
    action              text NOT NULL DEFAULT 'apply' CHECK (action IN ('apply', 'rollback')),
    status              text NOT NULL CHECK (status IN ('RUNNING', 'SUCCESS', 'FAILED',
                                                        'ROLLED_BACK', 'ROLLBACK_FAILED')),
    started_at          timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    completed_at        timestamptz,
    duration_ms         numeric(16,3),
    rows_affected       bigint CHECK (rows_affected >= 0),
    error_message       text,
    error_sqlstate      text,
    checksum            text,
    up_sql              text,
    down_sql            text,
    rollback_available  boolean GENERATED ALWAYS AS (down_sql IS NOT NULL) STORED,
    rollback_of         bigint REFERENCES iact.migration_log (id),
    runner              text NOT NULL CHECK (runner IN ('run_migration', 'external', 'safe_rollback_migration')),
    installed_by        name NOT NULL,
    session_role        name NOT NULL,
    application_name    text,
    backend_pid         integer,
    CHECK ((action = 'apply' AND status IN ('RUNNING', 'SUCCESS', 'FAILED') AND rollback_of IS NULL)
        OR (action = 'rollback' AND status IN ('RUNNING', 'ROLLED_BACK', 'ROLLBACK_FAILED') AND rollback_of IS NOT NULL)),
    CHECK ((status = 'RUNNING') = (completed_at IS NULL)),
    down_checksum       text
);
CREATE INDEX migration_log_version_idx ON iact.migration_log (version, id);
CREATE INDEX migration_log_running_idx ON iact.migration_log (started_at) WHERE status = 'RUNNING';

COMMENT ON TABLE iact.migration_log IS 'Append-only history of migrations applied and rolled back (iact)';
COMMENT ON COLUMN iact.migration_log.checksum IS 'SHA-256 (hex) of up_sql, for run_migration entries';
COMMENT ON COLUMN iact.migration_log.rollback_of IS 'For rollback entries: the apply entry undone';
COMMENT ON COLUMN iact.migration_log.down_checksum IS 'SHA-256 (hex) of down_sql, recorded when it was applied; checked before safe_rollback_migration runs it';

SELECT pg_catalog.pg_extension_config_dump('iact.migration_log', '');
SELECT pg_catalog.pg_extension_config_dump('iact.migration_log_id_seq', '');

CREATE FUNCTION iact.migration_log_guard() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'iact_migration_log_guard';
REVOKE ALL ON FUNCTION iact.migration_log_guard() FROM PUBLIC;
CREATE TRIGGER migration_log_guard BEFORE UPDATE OR DELETE ON iact.migration_log
    FOR EACH ROW EXECUTE FUNCTION iact.migration_log_guard();
CREATE TRIGGER migration_log_no_truncate BEFORE TRUNCATE ON iact.migration_log
    FOR EACH STATEMENT EXECUTE FUNCTION iact.migration_log_guard();

-- One row per version: is it applied now, by which entry, and what happened last.
CREATE VIEW iact.migration_status AS
WITH per_version AS (
    SELECT version,
           max(id) FILTER (WHERE action = 'apply' AND status = 'SUCCESS') AS last_success_id,
           max(id) FILTER (WHERE action = 'rollback' AND status = 'ROLLED_BACK') AS last_rollback_id,
           max(id) AS last_entry_id
      FROM iact.migration_log
     GROUP BY version
)
SELECT p.version,
       coalesce(a.description, l.description) AS description,
       (p.last_success_id IS NOT NULL
        AND p.last_success_id > coalesce(p.last_rollback_id, 0)) AS applied,
       CASE WHEN p.last_success_id IS NOT NULL
                 AND p.last_success_id > coalesce(p.last_rollback_id, 0) THEN a.id END AS applied_id,
       CASE WHEN p.last_success_id IS NOT NULL
                 AND p.last_success_id > coalesce(p.last_rollback_id, 0) THEN a.completed_at END AS applied_at,
       a.checksum,
       a.rollback_available,
       l.action AS last_action,
       l.status AS last_status,
       l.started_at AS last_started_at,
       a.down_checksum
  FROM per_version p
  LEFT JOIN iact.migration_log a ON a.id = p.last_success_id
  JOIN iact.migration_log l ON l.id = p.last_entry_id;

COMMENT ON VIEW iact.migration_status IS 'Current state of each migration version (iact)';

CREATE FUNCTION iact.log_migration_start(version text, description text, down_sql text DEFAULT NULL)
    RETURNS bigint LANGUAGE c AS 'MODULE_PATHNAME', 'iact_log_migration_start';
CREATE FUNCTION iact.log_rollback_start(version text)
    RETURNS bigint LANGUAGE c AS 'MODULE_PATHNAME', 'iact_log_rollback_start';
CREATE FUNCTION iact.log_migration_complete(log_id bigint, rows_affected bigint DEFAULT NULL)
    RETURNS void LANGUAGE c AS 'MODULE_PATHNAME', 'iact_log_migration_complete';
CREATE FUNCTION iact.log_migration_failed(log_id bigint, error_message text)
    RETURNS void LANGUAGE c AS 'MODULE_PATHNAME', 'iact_log_migration_failed';
CREATE PROCEDURE iact.run_migration(version text, description text, up_sql text,
                                    down_sql text DEFAULT NULL, lock_timeout interval DEFAULT NULL)
    LANGUAGE c AS 'MODULE_PATHNAME', 'iact_run_migration';
CREATE FUNCTION iact.safe_rollback_migration(version text, lock_timeout interval DEFAULT NULL)
    RETURNS boolean LANGUAGE c AS 'MODULE_PATHNAME', 'iact_safe_rollback_migration';

REVOKE ALL ON FUNCTION iact.log_migration_start(text, text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION iact.log_rollback_start(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION iact.log_migration_complete(bigint, bigint) FROM PUBLIC;
REVOKE ALL ON FUNCTION iact.log_migration_failed(bigint, text) FROM PUBLIC;
REVOKE ALL ON PROCEDURE iact.run_migration(text, text, text, text, interval) FROM PUBLIC;
REVOKE ALL ON FUNCTION iact.safe_rollback_migration(text, interval) FROM PUBLIC;
REVOKE ALL ON TABLE iact.migration_log FROM PUBLIC;
REVOKE ALL ON TABLE iact.migration_status FROM PUBLIC;

-- Batched backfills (src/backfill.c): one row per named backfill, updated
-- in the same transaction as each batch, so a resumed backfill continues
-- exactly after the last committed batch.
CREATE TABLE iact.backfill_runs (
    id              bigserial PRIMARY KEY,
    name            text NOT NULL UNIQUE CHECK (name <> ''),
    target_table    text NOT NULL,
    target_oid      oid NOT NULL,
    set_sql         text NOT NULL,
    where_sql       text,
    key_columns     text[] NOT NULL,
    upper_key       text[],
    last_key        text[],
    batch_size      integer NOT NULL CHECK (batch_size > 0),
    pause_ms        integer NOT NULL CHECK (pause_ms >= 0),
    status          text NOT NULL CHECK (status IN ('running', 'done', 'failed')),
    rows_done       bigint NOT NULL DEFAULT 0,
    batches         bigint NOT NULL DEFAULT 0,
    estimated_total bigint,
    started_at      timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    updated_at      timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    finished_at     timestamptz,
    run_seconds     double precision NOT NULL DEFAULT 0,
    error_message   text,
    started_by      name NOT NULL,
    backend_pid     integer
);
COMMENT ON TABLE iact.backfill_runs IS 'Progress of batched backfills, one row per named backfill (iact)';
SELECT pg_catalog.pg_extension_config_dump('iact.backfill_runs', '');
SELECT pg_catalog.pg_extension_config_dump('iact.backfill_runs_id_seq', '');

CREATE VIEW iact.backfill_progress AS
SELECT name, target_table, status, rows_done, estimated_total,
       CASE WHEN estimated_total > 0
            THEN round(100.0 * least(rows_done, estimated_total) / estimated_total, 1) END AS percent,
       CASE WHEN run_seconds > 0 THEN round((rows_done / run_seconds)::numeric, 1) END AS rows_per_second,
       batches, last_key, upper_key, started_at, updated_at, finished_at, error_message
  FROM iact.backfill_runs;

CREATE PROCEDURE iact.backfill(name text, target regclass, set_sql text,
                               where_sql text DEFAULT NULL, batch_size integer DEFAULT 1000,
                               pause interval DEFAULT '0')
    LANGUAGE c AS 'MODULE_PATHNAME', 'iact_backfill';
REVOKE ALL ON PROCEDURE iact.backfill(text, regclass, text, text, integer, interval) FROM PUBLIC;
REVOKE ALL ON TABLE iact.backfill_runs, iact.backfill_progress FROM PUBLIC;
