-- Who may push here: downstream instances and enrolled phones. Tokens are random, shown once,
-- stored as a SHA-256 hash (a 256-bit random token needs no slow hash), revocable.
CREATE TABLE peers (
    id           TEXT PRIMARY KEY,               -- UUID; a phone's records carry it as `device`
    kind         TEXT NOT NULL CHECK (kind IN ('instance', 'device')),
    name         TEXT NOT NULL,
    site_id      TEXT,                           -- a phone's site (no FK: sync/ knows no sites)
    token_hash   TEXT NOT NULL UNIQUE,
    created_at   TEXT NOT NULL,
    revoked_at   TEXT,
    last_seen_at TEXT,
    last_push_at TEXT,
    records_in   INTEGER NOT NULL DEFAULT 0      -- records applied from this peer
);
CREATE UNIQUE INDEX peers_instance_name ON peers (name) WHERE kind = 'instance' AND revoked_at IS NULL;
