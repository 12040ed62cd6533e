
-- 31_sync_grants.sql -- the sync's grants check scoped to the source
-- databases (src/sync_grants.c): write privileges of the MariaDB account
-- elsewhere are not refused but recorded with each run.
ALTER TABLE iact.sync_runs ADD COLUMN account_write_elsewhere text;
