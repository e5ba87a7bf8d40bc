-- The change log gets AUTOINCREMENT: a seq is never handed out twice on one database, even
-- after the newest changes were purged, so an upstream's cursor always means the same record.
CREATE TABLE changes_new (
    seq  INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    uuid TEXT NOT NULL
);
INSERT INTO changes_new (seq, kind, uuid) SELECT seq, kind, uuid FROM changes ORDER BY seq;
DROP TABLE changes;
ALTER TABLE changes_new RENAME TO changes;

-- Upstream side: per downstream instance, the highest seq of its change log committed here,
-- written in the same transaction as the batch. uuid is the record at that seq: a downstream
-- restored from an older copy sees its own log disagree and resends from 0 (duplicates only).
CREATE TABLE sync_cursors (
    source     TEXT PRIMARY KEY,
    seq        INTEGER NOT NULL,
    uuid       TEXT,
    updated_at TEXT NOT NULL
);

-- Downstream side: what this instance knows of its upstream (URL and token live in the
-- instance config, not here, so a copy of the database carries no credential).
CREATE TABLE sync_upstream (
    id              INTEGER PRIMARY KEY CHECK (id = 1),
    url             TEXT,                   -- the upstream this state belongs to
    source          TEXT,                   -- our peer id there
    cursor          INTEGER NOT NULL DEFAULT 0,   -- the upstream's cursor after our last push
    config_version  INTEGER NOT NULL DEFAULT 0,   -- the upstream's version after our last pull
    last_attempt_at TEXT,
    last_success_at TEXT,
    last_error      TEXT
);
INSERT INTO sync_upstream (id) VALUES (1);
