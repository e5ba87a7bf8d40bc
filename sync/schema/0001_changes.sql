-- The change log: one row per record stored here, in the same transaction as the record.
-- seq is what an upstream's cursor counts.
CREATE TABLE changes (
    seq  INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    uuid TEXT NOT NULL
);

-- Configuration versions: every change to sites, rosters or settings that flow down takes
-- the next number, so a downstream can pull "everything since V".
CREATE TABLE config_version (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    version INTEGER NOT NULL
);
INSERT INTO config_version (id, version) VALUES (1, 0);

-- Records an instance refused (bad content) or could not merge (same uuid, other content):
-- acknowledged to the sender, kept here for a person to review, never silently dropped.
CREATE TABLE sync_rejects (
    id          INTEGER PRIMARY KEY,
    uuid        TEXT NOT NULL,
    kind        TEXT NOT NULL,
    source      TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('rejected', 'conflict')),
    reason      TEXT NOT NULL,
    body        TEXT NOT NULL,
    received_at TEXT NOT NULL,
    UNIQUE (uuid, status, body)
);
