-- When a person was taken off a site's roster (`fieldapp roster deactivate`), a UTC timestamp;
-- NULL while they are on it (`activate` clears it). It flows down with the row. The purge
-- (privacy/retention.py) deletes, on the instance that owns the roster, a person taken off
-- longer ago than RETENTION_DAYS: their name and phone are not kept for ever. Before this
-- column nothing took anyone off a roster, so no inactive row lacks a time.
ALTER TABLE roster ADD COLUMN deactivated_at TEXT;
-- The roster people the purge deleted: their id and site only (no personal data), under the
-- configuration version of the deletion, so a pull deletes them below too (a deletion leaves
-- no row to carry a version) and a downstream of a downstream hears of it under its own
-- upstream's next version (syncing/configuration.py). Entries and screening answers may keep
-- the id; a screening answer about someone removed is still taken (screening/answers.py).
CREATE TABLE roster_removed (
    id         TEXT PRIMARY KEY,
    site_id    TEXT NOT NULL,
    removed_at TEXT NOT NULL,
    version    INTEGER NOT NULL
);
CREATE INDEX roster_removed_version ON roster_removed (version);
ALTER TABLE purge_log ADD COLUMN roster INTEGER NOT NULL DEFAULT 0;
