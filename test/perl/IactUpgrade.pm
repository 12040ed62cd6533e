# test/perl/IactUpgrade.pm -- helpers of test/t/070_upgrade.pl.
#
# describe_extension($node, $db [, $prefix_sql])
#     A sorted text description of every member object of extension iact in
#     $db: its identity (pg_describe_object), the definition (functions:
#     pg_get_functiondef; views: pg_get_viewdef; tables: columns in order with
#     types, defaults, NOT NULL, identity/generated, collation; constraints,
#     indexes, triggers, policies, rules, RLS flags, reloptions; sequences:
#     parameters and OWNED BY; types: enum labels, domain bases and checks,
#     composite attributes; the foreign-data wrapper's handler, validator and
#     options), its owner, ACL, initial privileges (pg_init_privs, what
#     pg_dump relies on), comment, and the extension's own row (version,
#     schema and its ACL, extconfig/extcondition as a sorted set).  Raw OIDs
#     never appear; names are printed with search_path = pg_catalog so they
#     are always schema-qualified, and the settings that change how values
#     and definitions print (DateStyle, IntervalStyle, TimeZone, ...) are
#     pinned: the description depends on no session setting.
#     Member classes the description does not know are listed as
#     "unhandled ..." lines (compared by identity only).  The server of this
#     environment stamps every column's attoptions with a per-creation
#     "pg_attver=N"; that entry is left out (other column options count).  $prefix_sql runs
#     first in the same transaction, which is then rolled back (the test
#     uses it to show that a changed object changes the description).
# unified_diff($a, $b, $label_a, $label_b)
#     diff -u of two texts ('' when equal).
# relation_snapshot($node, $db, $schemas)
#     { relation => [columns, rows as text] } for every table, view and
#     sequence in the given schemas (rows sorted by every column, text form).
# relation_rows($node, $db, $rel, $columns)
#     the rows of $rel projected on $columns, as relation_snapshot renders them.
package IactUpgrade;

use strict;
use warnings;
use Exporter 'import';
use File::Temp qw(tempdir);
use IPC::Run;

our @EXPORT = qw(describe_extension unified_diff relation_snapshot relation_rows);

# one row per section: the key sorts the output, the body may span lines
my $describe_sql = <<'SQL';
WITH ext AS (SELECT e.* FROM pg_catalog.pg_extension e WHERE e.extname = 'iact'),
mem AS (
	SELECT d.classid, d.objid, d.objsubid
	  FROM pg_catalog.pg_depend d JOIN ext ON d.refobjid = ext.oid
	 WHERE d.refclassid = 'pg_catalog.pg_extension'::pg_catalog.regclass AND d.deptype = 'e'),
memrel AS (
	SELECT c.* FROM pg_catalog.pg_class c JOIN mem m
	    ON m.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND m.objid = c.oid),
sections(k, body) AS (
	-- the extension itself, its schema, its config-dump registrations
	SELECT 'extension', pg_catalog.format(E'version %s relocatable %s schema %s\nschema owner %s acl %s comment %s',
	         e.extversion, e.extrelocatable, e.extnamespace::pg_catalog.regnamespace,
	         n.nspowner::pg_catalog.regrole, n.nspacl, pg_catalog.obj_description(n.oid, 'pg_namespace'))
	  FROM ext e JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace
	UNION ALL
	SELECT 'extconfig ' || (e.extconfig[i])::pg_catalog.regclass::text,
	       'condition ' || pg_catalog.quote_literal(e.extcondition[i])
	  FROM ext e, pg_catalog.generate_subscripts(e.extconfig, 1) i
	UNION ALL
	-- every member, whatever its class
	SELECT 'member ' || pg_catalog.pg_describe_object(m.classid, m.objid, m.objsubid),
	       'class ' || m.classid::pg_catalog.regclass::text
	  FROM mem m
	UNION ALL
	SELECT 'unhandled ' || pg_catalog.pg_describe_object(m.classid, m.objid, m.objsubid), ''
	  FROM mem m
	 WHERE m.classid::pg_catalog.regclass::text NOT IN
	       ('pg_proc', 'pg_class', 'pg_type', 'pg_foreign_data_wrapper', 'pg_namespace')
	UNION ALL
	-- initial privileges recorded for members and their columns
	SELECT 'initprivs ' || pg_catalog.pg_describe_object(ip.classoid, ip.objoid, ip.objsubid),
	       ip.privtype::text || ' ' || ip.initprivs::text
	  FROM pg_catalog.pg_init_privs ip JOIN mem m ON m.classid = ip.classoid AND m.objid = ip.objoid
	UNION ALL
	-- functions and procedures
	SELECT 'function ' || p.oid::pg_catalog.regprocedure::text,
	       pg_catalog.format(E'owner %s acl %s comment %s\n%s', p.proowner::pg_catalog.regrole, p.proacl,
	         pg_catalog.obj_description(p.oid, 'pg_proc'),
	         CASE WHEN p.prokind = 'a' THEN 'aggregate' ELSE pg_catalog.pg_get_functiondef(p.oid) END)
	  FROM pg_catalog.pg_proc p JOIN mem m
	    ON m.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass AND m.objid = p.oid
	UNION ALL
	-- relations
	SELECT 'relation ' || c.oid::pg_catalog.regclass::text,
	       pg_catalog.format(E'kind %s persistence %s owner %s acl %s rls %s force_rls %s options %s comment %s%s',
	         c.relkind, c.relpersistence, c.relowner::pg_catalog.regrole, c.relacl, c.relrowsecurity,
	         c.relforcerowsecurity, c.reloptions, pg_catalog.obj_description(c.oid, 'pg_class'),
	         CASE WHEN c.relkind IN ('v', 'm') THEN E'\n' || pg_catalog.pg_get_viewdef(c.oid) ELSE '' END)
	  FROM memrel c
	UNION ALL
	SELECT 'relation ' || c.oid::pg_catalog.regclass::text || ' sequence',
	       pg_catalog.format('type %s start %s increment %s min %s max %s cache %s cycle %s owned_by %s',
	         s.seqtypid::pg_catalog.regtype, s.seqstart, s.seqincrement, s.seqmin, s.seqmax, s.seqcache,
	         s.seqcycle,
	         (SELECT d.refobjid::pg_catalog.regclass::text || '.' || pg_catalog.quote_ident(a.attname) || ' ' || d.deptype::text
	            FROM pg_catalog.pg_depend d
	            JOIN pg_catalog.pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
	           WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.objid = c.oid
	             AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.deptype IN ('a', 'i')
	             AND d.refobjsubid > 0))
	  FROM memrel c JOIN pg_catalog.pg_sequence s ON s.seqrelid = c.oid
	UNION ALL
	-- columns in order (position among the live columns: dropped ones do not count)
	SELECT pg_catalog.format('relation %s column %s', a.attrelid::pg_catalog.regclass,
	         pg_catalog.lpad(pg_catalog.row_number() OVER (PARTITION BY a.attrelid ORDER BY a.attnum)::text, 3, '0')),
	       pg_catalog.format('%s %s notnull %s default %s identity %s generated %s collation %s acl %s options %s comment %s',
	         pg_catalog.quote_ident(a.attname), pg_catalog.format_type(a.atttypid, a.atttypmod), a.attnotnull,
	         pg_catalog.pg_get_expr(ad.adbin, ad.adrelid), a.attidentity, a.attgenerated,
	         CASE WHEN a.attcollation <> t.typcollation THEN a.attcollation::pg_catalog.regcollation::text END,
	         a.attacl,
	         (SELECT pg_catalog.array_agg(o ORDER BY o) FROM pg_catalog.unnest(a.attoptions) o
	           WHERE o NOT LIKE 'pg\_attver=%'),
	         pg_catalog.col_description(a.attrelid, a.attnum))
	  FROM memrel c
	  JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
	  JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
	  LEFT JOIN pg_catalog.pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
	 WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f', 'c')
	UNION ALL
	SELECT pg_catalog.format('relation %s constraint %s', co.conrelid::pg_catalog.regclass, pg_catalog.quote_ident(co.conname)),
	       pg_catalog.pg_get_constraintdef(co.oid) || ' comment ' ||
	         coalesce(pg_catalog.obj_description(co.oid, 'pg_constraint'), '-')
	  FROM memrel c JOIN pg_catalog.pg_constraint co ON co.conrelid = c.oid
	UNION ALL
	SELECT pg_catalog.format('relation %s index %s', i.indrelid::pg_catalog.regclass, i.indexrelid::pg_catalog.regclass),
	       pg_catalog.pg_get_indexdef(i.indexrelid) || pg_catalog.format(' clustered %s replident %s comment %s',
	         i.indisclustered, i.indisreplident, pg_catalog.obj_description(i.indexrelid, 'pg_class'))
	  FROM memrel c JOIN pg_catalog.pg_index i ON i.indrelid = c.oid
	UNION ALL
	SELECT pg_catalog.format('relation %s trigger %s', tg.tgrelid::pg_catalog.regclass, pg_catalog.quote_ident(tg.tgname)),
	       pg_catalog.pg_get_triggerdef(tg.oid) || pg_catalog.format(' enabled %s comment %s', tg.tgenabled,
	         pg_catalog.obj_description(tg.oid, 'pg_trigger'))
	  FROM memrel c JOIN pg_catalog.pg_trigger tg ON tg.tgrelid = c.oid AND NOT tg.tgisinternal
	UNION ALL
	SELECT pg_catalog.format('relation %s policy %s', po.polrelid::pg_catalog.regclass, pg_catalog.quote_ident(po.polname)),
	       pg_catalog.format('cmd %s permissive %s roles %s using %s check %s comment %s', po.polcmd, po.polpermissive,
	         (SELECT pg_catalog.string_agg(CASE WHEN r = 0 THEN 'public' ELSE r::pg_catalog.regrole::text END, ',' ORDER BY 1)
	            FROM pg_catalog.unnest(po.polroles) r),
	         pg_catalog.pg_get_expr(po.polqual, po.polrelid), pg_catalog.pg_get_expr(po.polwithcheck, po.polrelid),
	         pg_catalog.obj_description(po.oid, 'pg_policy'))
	  FROM memrel c JOIN pg_catalog.pg_policy po ON po.polrelid = c.oid
	UNION ALL
	SELECT pg_catalog.format('relation %s rule %s', ru.ev_class::pg_catalog.regclass, pg_catalog.quote_ident(ru.rulename)),
	       pg_catalog.pg_get_ruledef(ru.oid) || ' enabled ' || ru.ev_enabled::text
	  FROM memrel c JOIN pg_catalog.pg_rewrite ru ON ru.ev_class = c.oid AND ru.rulename <> '_RETURN'
	UNION ALL
	-- types: enums, domains, composite types, ranges
	SELECT 'type ' || pg_catalog.format_type(t.oid, NULL),
	       pg_catalog.format(E'kind %s owner %s acl %s base %s notnull %s default %s comment %s\nlabels %s\nchecks %s\nattributes %s',
	         t.typtype, t.typowner::pg_catalog.regrole, t.typacl,
	         CASE WHEN t.typbasetype <> 0 THEN pg_catalog.format_type(t.typbasetype, t.typtypmod) END,
	         t.typnotnull, t.typdefault, pg_catalog.obj_description(t.oid, 'pg_type'),
	         (SELECT pg_catalog.string_agg(pg_catalog.quote_literal(el.enumlabel), ',' ORDER BY el.enumsortorder)
	            FROM pg_catalog.pg_enum el WHERE el.enumtypid = t.oid),
	         (SELECT pg_catalog.string_agg(pg_catalog.quote_ident(co.conname) || ' ' || pg_catalog.pg_get_constraintdef(co.oid), ', ' ORDER BY co.conname)
	            FROM pg_catalog.pg_constraint co WHERE co.contypid = t.oid),
	         (SELECT pg_catalog.string_agg(pg_catalog.quote_ident(a.attname) || ' ' || pg_catalog.format_type(a.atttypid, a.atttypmod), ', ' ORDER BY a.attnum)
	            FROM pg_catalog.pg_attribute a WHERE a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped))
	  FROM pg_catalog.pg_type t JOIN mem m
	    ON m.classid = 'pg_catalog.pg_type'::pg_catalog.regclass AND m.objid = t.oid
	UNION ALL
	SELECT 'foreign-data wrapper ' || pg_catalog.quote_ident(w.fdwname),
	       pg_catalog.format('handler %s validator %s options %s owner %s acl %s comment %s',
	         w.fdwhandler::pg_catalog.regproc, w.fdwvalidator::pg_catalog.regproc, w.fdwoptions,
	         w.fdwowner::pg_catalog.regrole, w.fdwacl, pg_catalog.obj_description(w.oid, 'pg_foreign_data_wrapper'))
	  FROM pg_catalog.pg_foreign_data_wrapper w JOIN mem m
	    ON m.classid = 'pg_catalog.pg_foreign_data_wrapper'::pg_catalog.regclass AND m.objid = w.oid
)
SELECT '### ' || k || E'\n' || coalesce(body, '<null>') FROM sections ORDER BY k COLLATE "C", body COLLATE "C";
SQL

sub describe_extension
{
	my ($node, $db, $prefix) = @_;
	# every setting that changes how a definition is printed, pinned
	my $sql = "BEGIN;\nSET LOCAL search_path = pg_catalog; SET LOCAL datestyle = 'ISO, YMD';\n"
	  . "SET LOCAL intervalstyle = postgres; SET LOCAL timezone = 'UTC'; SET LOCAL extra_float_digits = 1;\n"
	  . "SET LOCAL quote_all_identifiers = off; SET LOCAL bytea_output = hex;\n";
	$sql .= "$prefix;\n" if defined $prefix;
	$sql .= $describe_sql;
	$sql .= "ROLLBACK;\n";
	return $node->safe_psql($db, $sql);
}

sub unified_diff
{
	my ($x, $y, $lx, $ly) = @_;
	return '' if $x eq $y;
	my $dir = tempdir(CLEANUP => 1);
	for ([ $lx, $x ], [ $ly, $y ])
	{
		open my $fh, '>', "$dir/$_->[0]" or die "$dir/$_->[0]: $!";
		print $fh $_->[1], "\n";
		close $fh;
	}
	my $out = '';
	IPC::Run::run([ 'diff', '-u', "$dir/$lx", "$dir/$ly" ], '>', \$out);
	return $out;
}

sub relation_rows
{
	my ($node, $db, $rel, $cols) = @_;
	my $list = join(', ', @$cols);
	my $order = join(', ', map { "$_ COLLATE \"C\"" } map { "($_)::text" } @$cols);
	return $node->safe_psql($db, "SELECT $list FROM $rel ORDER BY $order");
}

sub relation_snapshot
{
	my ($node, $db, $schemas) = @_;
	my $in = join(', ', map { "'$_'" } @$schemas);
	my %snap;
	my @rels = split /\n/, $node->safe_psql($db, qq{
		SELECT c.oid::regclass FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		 WHERE n.nspname IN ($in) AND c.relkind IN ('r', 'p', 'v', 'm', 'S') ORDER BY 1::text});
	for my $rel (@rels)
	{
		my $kind = $node->safe_psql($db, "SELECT relkind FROM pg_class WHERE oid = '$rel'::regclass");
		my @cols =
		  $kind eq 'S'
		  ? ('last_value', 'is_called')
		  : split /\n/, $node->safe_psql($db, qq{
			SELECT quote_ident(attname) FROM pg_attribute
			 WHERE attrelid = '$rel'::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum});
		$snap{$rel} = [ \@cols, relation_rows($node, $db, $rel, \@cols) ];
	}
	return \%snap;
}

1;
