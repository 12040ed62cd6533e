-- The C functions behind SQL functions are named with the iact_ prefix of
-- every exported symbol of iact.so (src/events.c, src/no_overlap.c,
-- src/no_overlap_groups.c).  Same signatures and attributes as in
-- src/sql/20_events.sql; CREATE OR REPLACE keeps their owner, privileges and
-- comments.  iact.so keeps the 1.0 names too, for databases still at 1.0.

CREATE OR REPLACE FUNCTION iact.refuse_update() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'iact_events_refuse_update';

CREATE OR REPLACE FUNCTION iact.no_overlap_trigger() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'iact_no_overlap_trigger';

CREATE OR REPLACE FUNCTION iact.no_overlap_members(of_group text DEFAULT NULL, strict boolean DEFAULT false)
    RETURNS TABLE (group_name text, table_name regclass, person_column name,
                   start_column name, end_column name, probe_index regclass,
                   max_length interval)
    LANGUAGE c STABLE AS 'MODULE_PATHNAME', 'iact_no_overlap_members';

CREATE OR REPLACE FUNCTION iact.no_overlap_touch(group_name text) RETURNS void
    LANGUAGE c STRICT AS 'MODULE_PATHNAME', 'iact_no_overlap_touch';

CREATE OR REPLACE FUNCTION iact.session_person_id() RETURNS bigint
    LANGUAGE c STABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'iact_events_session_person_id';
