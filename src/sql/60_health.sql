-- 60_health.sql: iact.health() and iact.metrics() (src/health.c, src/health_metrics.c).
--
-- Both run as the extension owner (SECURITY DEFINER) so a monitoring role
-- sees every figure without privileges on the tables they read; PUBLIC may
-- not call them.  pg_monitor may (it also needs USAGE on schema iact).

CREATE FUNCTION iact.health()
RETURNS TABLE (check_name text, status text, value numeric, detail text)
LANGUAGE c
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'iact_health';
COMMENT ON FUNCTION iact.health() IS
    'iact health checks: one row per check (and per synced table), status ok, warn or fail';

CREATE FUNCTION iact.metrics()
RETURNS text
LANGUAGE c
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'iact_metrics';
COMMENT ON FUNCTION iact.metrics() IS
    'iact figures in Prometheus text exposition format, for a scraper';

REVOKE ALL ON FUNCTION iact.health() FROM PUBLIC;
REVOKE ALL ON FUNCTION iact.metrics() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION iact.health() TO pg_monitor;
GRANT EXECUTE ON FUNCTION iact.metrics() TO pg_monitor;
