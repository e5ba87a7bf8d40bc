-- A random id for each configuration version, kept with its number. A downstream remembers the
-- id of the version it pulled and sends it back with `since`: an upstream restored from an older
-- copy hands the same numbers out again under new ids, so the downstream's V no longer matches
-- and it is sent everything again (by the number alone the two V+1 cannot be told apart).
-- Versions from before this migration have none: for them a pull goes by the number, as before.
CREATE TABLE config_version_ids (
    version INTEGER NOT NULL PRIMARY KEY,
    id      TEXT NOT NULL
);
ALTER TABLE sync_upstream ADD COLUMN config_version_id TEXT;  -- the id of config_version
