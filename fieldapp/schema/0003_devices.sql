-- One-time enrolment links for volunteers' phones. The link carries a random token; only its
-- hash is kept. Redeeming it once (before it expires) creates the device peer (sync peers table).
CREATE TABLE device_enrolments (
    token_hash  TEXT PRIMARY KEY,
    site_id     TEXT NOT NULL REFERENCES sites (id),
    name        TEXT NOT NULL,                   -- the phone's name, e.g. "东门 1 号机"
    created_at  TEXT NOT NULL,
    expires_at  TEXT NOT NULL,
    used_at     TEXT,
    device_id   TEXT                             -- the peer created when it was redeemed
);
