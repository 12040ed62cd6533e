-- 60_monitoring.sql (1.0 -> 1.1): the maintenance worker's table and
-- iact.check_overlaps_now(), exactly as src/sql/65_maintenance.sql creates them.
-- One row per run of a maintenance task.  overlap_check rows carry the
-- number of overlapping pairs found and a sample of at most 10 of them;
-- audit_retention rows the number of audit entries deleted so far.
CREATE TABLE iact.maintenance_runs (
    id              bigserial PRIMARY KEY,
    task            text NOT NULL CHECK (task IN ('overlap_check', 'audit_retention')),
    started_at      timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    finished_at     timestamptz,
    status          text NOT NULL CHECK (status IN ('running', 'success', 'failed')),
    overlaps_found  bigint CHECK (overlaps_found >= 0),
    overlaps_sample jsonb,
    rows_purged     bigint CHECK (rows_purged >= 0),
    error           text,
    run_by          name NOT NULL DEFAULT session_user,
    CHECK ((status = 'running') = (finished_at IS NULL))
);
CREATE INDEX maintenance_runs_task_idx ON iact.maintenance_runs (task, id);
COMMENT ON TABLE iact.maintenance_runs IS
    'iact: one row per run of the maintenance worker''s tasks (overlap_check, audit_retention)';
COMMENT ON COLUMN iact.maintenance_runs.overlaps_sample IS
    'overlap_check: at most 10 of the overlapping pairs found, as rows of iact.find_overlaps()';
COMMENT ON COLUMN iact.maintenance_runs.rows_purged IS
    'audit_retention: audit entries deleted (committed batch by batch)';
REVOKE ALL ON TABLE iact.maintenance_runs FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('iact.maintenance_runs', '');
SELECT pg_catalog.pg_extension_config_dump('iact.maintenance_runs_id_seq', '');

-- Run the overlap scan now and store its result (what the maintenance
-- worker does every iact.overlap_check_interval).  Returns the number of
-- overlapping pairs, or NULL when the scan failed (the run then says why).
CREATE FUNCTION iact.check_overlaps_now() RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    rid    bigint;
    n      bigint;
    sample jsonb;
BEGIN
    INSERT INTO iact.maintenance_runs (task, status) VALUES ('overlap_check', 'running')
        RETURNING id INTO rid;
    BEGIN
        SELECT count(*), jsonb_agg(to_jsonb(o) - 'rn' ORDER BY o.rn) FILTER (WHERE o.rn <= 10)
          INTO n, sample
          FROM (SELECT f.*, row_number() OVER () AS rn FROM iact.find_overlaps() f) o;
    EXCEPTION WHEN OTHERS THEN
        UPDATE iact.maintenance_runs
           SET status = 'failed', finished_at = clock_timestamp(), error = SQLERRM
         WHERE id = rid;
        RAISE WARNING 'iact overlap check failed: %', SQLERRM;
        RETURN NULL;
    END;
    UPDATE iact.maintenance_runs
       SET status = 'success', finished_at = clock_timestamp(),
           overlaps_found = n, overlaps_sample = coalesce(sample, '[]')
     WHERE id = rid;
    RETURN n;
END
$$;
REVOKE ALL ON FUNCTION iact.check_overlaps_now() FROM PUBLIC;
COMMENT ON FUNCTION iact.check_overlaps_now() IS
    'iact: run the overlap scan now, store its result in iact.maintenance_runs; returns the pairs found';
