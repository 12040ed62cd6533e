-- The extension is installed (pg_regress --load-extension=iact) into schema iact,
-- is not relocatable, and the library is preloaded by the test servers.
SELECT extname, extversion, extrelocatable, extnamespace::regnamespace AS schema
  FROM pg_extension WHERE extname = 'iact';
SHOW shared_preload_libraries;
-- PUBLIC has no access to the schema
SELECT has_schema_privilege('public', 'iact', 'USAGE') AS public_usage;
-- the extension's GUC prefix is reserved: a misspelt iact.* setting is refused
SET iact.no_such_setting = 1;
