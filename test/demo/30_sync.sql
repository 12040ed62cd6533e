\echo '=== Sync: pulling the legacy IVR from MariaDB (read-only, incremental, never short)'
\echo ''
\echo '--- The IVR gets a day of sample traffic (through MariaDB''s own root account: the demo plays the IVR)'
\! $IACT_MARIADB_CLI -e "INSERT INTO calls (call_id, queue_id, agent_id, caller, started_at, answered_at, duration_s, wait_s, cost, abandoned, score, notes, meta, updated_at) SELECT 100 + seq, 1 + seq % 4, IF(seq % 7 = 0, NULL, 1 + seq % 4), CONCAT('+32255', LPAD(seq, 5, '0')), UTC_TIMESTAMP() - INTERVAL 1 DAY + INTERVAL seq * 40 SECOND, IF(seq % 7 = 0, '0000-00-00 00:00:00', UTC_TIMESTAMP() - INTERVAL 1 DAY + INTERVAL seq * 40 + 5 + seq % 50 SECOND), IF(seq % 7 = 0, 0, 30 + seq % 600), 5 + seq % 50, (30 + seq % 600) / 1000, seq % 7 = 0, NULL, IF(seq % 5 = 0, 'callback requested', NULL), JSON_OBJECT('ivr_path', JSON_ARRAY(1, 1 + seq % 3)), UTC_TIMESTAMP() - INTERVAL 1 DAY + INTERVAL seq * 40 + 700 SECOND FROM seq_1_to_2000"
\! $IACT_MARIADB_CLI -e "SELECT COUNT(*) AS calls_in_mariadb FROM calls"

\echo ''
\echo '--- 1. Connection settings live in the catalog, like postgres_fdw: a server and a user mapping'
\getenv myport IACT_MARIADB_PORT
\getenv mypw IACT_MARIADB_PASSWORD
CREATE SERVER ivr FOREIGN DATA WRAPPER iact_mariadb
	OPTIONS (host '127.0.0.1', port :'myport', dbname 'ivr', connect_timeout '5', read_timeout '300');
CREATE USER MAPPING FOR CURRENT_USER SERVER ivr OPTIONS (user 'iact_reader', password :'mypw');
\echo 'Unknown options are refused with the list of valid ones:'
\set ON_ERROR_STOP 0
ALTER SERVER ivr OPTIONS (ADD hostname 'x');
\set ON_ERROR_STOP 1

\echo ''
\echo '--- 2. What the sync would make of a MariaDB table (the type rules)'
SELECT column_name, source_type, target_type, primary_key_position AS pk
  FROM iact.sync_source_columns('ivr', 'calls');

\echo ''
\echo '--- 3. Register three tables: the targets are created from the source''s columns'
SELECT iact.sync_add_table('ivr', 'queues', 'ivr_queues') AS queues_id,
       iact.sync_add_table('ivr', 'agents', 'ivr_agents') AS agents_id,
       iact.sync_add_table('ivr', 'calls', 'ivr_calls', watermark_column => 'updated_at',
                           lookback => 60, retention_days => 365) AS calls_id;
\d ivr_calls

\echo ''
\echo '--- 4. Sync now (in this transaction; atomic per table).  The five 2024 calls of the legacy'
\echo '---    data are older than the 365-day retention of ivr_calls: they are not copied.'
SELECT target_table, status, mode, rows_read, rows_inserted, rows_rejected, source_count, target_count, watermark_to,
       write_path
  FROM iact.sync_now() ORDER BY id;
\echo 'write_path: plain targets are written directly (table access method + PostgreSQL''s index and'
\echo 'constraint routines, as logical replication applies rows); others by statements, with the reason.'
SELECT call_id, caller, started_at, answered_at, abandoned, meta FROM ivr_calls ORDER BY call_id LIMIT 8;
\echo 'Zero dates (0000-00-00) became NULL; tinyint(1) became boolean; JSON became jsonb.'

\echo ''
\echo '--- 5. Data that lives only in PostgreSQL: queue owners and SLA targets'
CREATE TABLE queue_owner (queue_id integer PRIMARY KEY, owner text NOT NULL, sla_answer_pct numeric NOT NULL);
INSERT INTO queue_owner VALUES (1, 'Claire (front office)', 80), (2, 'Marc (sales)', 90),
	(3, 'Ines (complaints)', 70), (4, 'Night desk', 60);

\echo '--- ... and a report joining both: yesterday''s traffic per queue against its target'
SELECT q.name AS queue, o.owner, count(*) AS calls,
       round(100.0 * count(*) FILTER (WHERE c.abandoned) / count(*), 1) AS abandoned_pct,
       round(avg(c.wait_s), 1) AS avg_wait_s,
       round(100.0 * count(*) FILTER (WHERE NOT c.abandoned AND c.wait_s <= q.sla_seconds) / count(*), 1) AS answered_in_sla_pct,
       o.sla_answer_pct AS target_pct,
       CASE WHEN 100.0 * count(*) FILTER (WHERE NOT c.abandoned AND c.wait_s <= q.sla_seconds) / count(*)
                 >= o.sla_answer_pct THEN 'ok' ELSE 'MISSED' END AS verdict
  FROM ivr_calls c
  JOIN ivr_queues q USING (queue_id)
  JOIN queue_owner o USING (queue_id)
 GROUP BY q.name, o.owner, o.sla_answer_pct
 ORDER BY q.name;

SELECT a.full_name AS agent, count(*) AS answered, round(avg(c.duration_s)) AS avg_talk_s
  FROM ivr_calls c JOIN ivr_agents a USING (agent_id)
 WHERE NOT c.abandoned GROUP BY a.full_name ORDER BY answered DESC;

\echo ''
\echo '--- 6. The IVR keeps working: 50 new calls, one call corrected'
\! $IACT_MARIADB_CLI -e "INSERT INTO calls (call_id, queue_id, agent_id, caller, started_at, answered_at, duration_s, wait_s, abandoned, updated_at) SELECT 5000 + seq, 2, 2, CONCAT('+3247', seq), UTC_TIMESTAMP() - INTERVAL 5 MINUTE, UTC_TIMESTAMP() - INTERVAL 4 MINUTE, 60, 3, 0, UTC_TIMESTAMP(3) FROM seq_1_to_50; UPDATE calls SET duration_s = 999, updated_at = UTC_TIMESTAMP(3) WHERE call_id = 150"
\echo 'An incremental run reads only past the last watermark (minus the look-back), commits every'
\echo 'batch together with its watermark (CALL: the procedure path the background worker uses):'
CALL iact.sync_run('ivr_calls');
SELECT status, transaction_mode, rows_read, rows_inserted, rows_updated, watermark_from, watermark_to, write_path
  FROM iact.sync_runs WHERE target_table = 'public.ivr_calls' ORDER BY id DESC LIMIT 1;
SELECT call_id, duration_s FROM ivr_calls WHERE call_id = 150;

\echo ''
\echo '--- 7. Never write to the IVR: an account that could write is refused at connect'
\getenv writerpw IACT_MARIADB_WRITER_PASSWORD
CREATE SERVER ivr_as_writer FOREIGN DATA WRAPPER iact_mariadb OPTIONS (host '127.0.0.1', port :'myport', dbname 'ivr');
CREATE USER MAPPING FOR CURRENT_USER SERVER ivr_as_writer OPTIONS (user 'iact_writer', password :'writerpw');
\set ON_ERROR_STOP 0
SELECT * FROM iact.sync_source_columns('ivr_as_writer', 'calls');
\set ON_ERROR_STOP 1
DROP SERVER ivr_as_writer CASCADE;
\echo 'And the source is byte-for-byte what it was (CHECKSUM TABLE before and after a run):'
\set before `$IACT_MARIADB_CLI -e "CHECKSUM TABLE calls, agents, queues EXTENDED"`
SELECT target_table, status, rows_read FROM iact.sync_now() ORDER BY id;
\set after `$IACT_MARIADB_CLI -e "CHECKSUM TABLE calls, agents, queues EXTENDED"`
SELECT :'before' = :'after' AS mariadb_unchanged;

\echo ''
\echo '--- 8. Bad values do not stop a run: they go to iact.sync_rejects and the run is partial'
CREATE TABLE ivr_dirty (id integer PRIMARY KEY, label text, raw text, amount integer, seen_on date);
SELECT iact.sync_add_table('ivr', 'dirty', 'ivr_dirty') AS dirty_id;
SELECT target_table, status, rows_read, rows_inserted, rows_rejected FROM iact.sync_now('ivr_dirty');
SELECT key, column_name, raw_value, reason FROM iact.sync_rejects ORDER BY id;

\echo ''
\echo '--- The run history (kept iact.sync_history_days days)'
SELECT id, target_table, status, mode, rows_read, rows_inserted, rows_updated, rows_deleted, rows_rejected
  FROM iact.sync_runs ORDER BY id;
