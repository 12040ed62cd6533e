
-- ===========================================================================
-- Migrations (1.0 -> 1.1): external runners record rollbacks and register
-- rollback SQL; down_sql is checksummed (src/migration_external.c,
-- src/migration_run.c).  The migration and backfill locks moved to lock tags
-- SQL cannot produce: nothing to change in SQL for that.
-- ===========================================================================

-- a rollback entry may be RUNNING (log_rollback_start)
ALTER TABLE iact.migration_log DROP CONSTRAINT migration_log_check;
ALTER TABLE iact.migration_log ADD CONSTRAINT migration_log_check
    CHECK ((action = 'apply' AND status IN ('RUNNING', 'SUCCESS', 'FAILED') AND rollback_of IS NULL)
        OR (action = 'rollback' AND status IN ('RUNNING', 'ROLLED_BACK', 'ROLLBACK_FAILED') AND rollback_of IS NOT NULL));

ALTER TABLE iact.migration_log ADD COLUMN down_checksum text;
COMMENT ON COLUMN iact.migration_log.down_checksum IS 'SHA-256 (hex) of down_sql, recorded when it was applied; checked before safe_rollback_migration runs it';

-- Entries written by 1.0 get the checksum of their down_sql as it is now:
-- the upgrade vouches for it (the history is otherwise append-only).
ALTER TABLE iact.migration_log DISABLE TRIGGER migration_log_guard;
UPDATE iact.migration_log
   SET down_checksum = pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to(
           down_sql, pg_catalog.getdatabaseencoding())), 'hex')
 WHERE down_sql IS NOT NULL;
ALTER TABLE iact.migration_log ENABLE TRIGGER migration_log_guard;

CREATE OR REPLACE VIEW iact.migration_status AS
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


-- log_migration_start gains down_sql (the C entry still serves 1.0's two
-- arguments).  Its GRANTs do not survive the DROP: re-grant after upgrading.
DROP FUNCTION iact.log_migration_start(text, text);
CREATE FUNCTION iact.log_migration_start(version text, description text, down_sql text DEFAULT NULL)
    RETURNS bigint LANGUAGE c AS 'MODULE_PATHNAME', 'iact_log_migration_start';
CREATE FUNCTION iact.log_rollback_start(version text)
    RETURNS bigint LANGUAGE c AS 'MODULE_PATHNAME', 'iact_log_rollback_start';
REVOKE ALL ON FUNCTION iact.log_migration_start(text, text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION iact.log_rollback_start(text) FROM PUBLIC;
