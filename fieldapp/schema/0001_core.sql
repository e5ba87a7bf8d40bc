-- Core tables: instance settings, sites, rosters (configuration, owned upstream and
-- versioned so it can flow down), and gate entries (append-only records, keyed by UUID).

CREATE TABLE settings (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE sites (
    id              TEXT PRIMARY KEY,            -- UUID, the same on every instance
    name            TEXT NOT NULL,
    kind            TEXT NOT NULL CHECK (kind IN ('residential', 'construction', 'other')),
    address         TEXT NOT NULL DEFAULT '',
    district        TEXT NOT NULL DEFAULT '',
    contact         TEXT NOT NULL DEFAULT '',    -- who to ask (shown on out-of-date posters)
    code            TEXT NOT NULL UNIQUE,        -- unguessable, URL-safe, rotatable
    active          INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
    optional_fields TEXT NOT NULL DEFAULT 'id_number,phone,plate,destination',
    version         INTEGER NOT NULL,            -- configuration version of the last change
    created_at      TEXT NOT NULL
);

-- Codes a site had before a rotation: an old poster still resolves to "out of date".
CREATE TABLE site_old_codes (
    code       TEXT PRIMARY KEY,
    site_id    TEXT NOT NULL REFERENCES sites (id),
    retired_at TEXT NOT NULL
);

CREATE TABLE roster (
    id          TEXT PRIMARY KEY,                -- UUID
    site_id     TEXT NOT NULL REFERENCES sites (id),
    name        TEXT NOT NULL,
    phone       TEXT NOT NULL DEFAULT '',
    unit        TEXT NOT NULL DEFAULT '',
    person_type TEXT NOT NULL DEFAULT 'resident',
    active      INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
    version     INTEGER NOT NULL
);
CREATE INDEX roster_site ON roster (site_id, active);

CREATE TABLE entries (
    id           INTEGER PRIMARY KEY,            -- local order, for keyset pagination
    uuid         TEXT NOT NULL UNIQUE,           -- made on the device; the record's identity
    hash         TEXT NOT NULL,                  -- content hash: same uuid + other hash = conflict
    origin       TEXT NOT NULL,                  -- instance that first accepted the record
    device       TEXT,                           -- enrolled phone, if any
    recorded_at  TEXT NOT NULL,                  -- device clock, UTC ISO 8601
    received_at  TEXT NOT NULL,                  -- this instance's clock, UTC ISO 8601
    site_id      TEXT NOT NULL REFERENCES sites (id),
    direction    TEXT NOT NULL CHECK (direction IN ('in', 'out')),
    person_type  TEXT NOT NULL,
    name         TEXT NOT NULL,
    phone        TEXT NOT NULL DEFAULT '',
    id_masked    TEXT NOT NULL DEFAULT '',       -- first 6 + last 4; the full number never in clear
    id_hash      TEXT NOT NULL DEFAULT '',       -- keyed hash, for look-ups
    id_cipher    TEXT NOT NULL DEFAULT '',       -- encrypted full number
    temperature  REAL NOT NULL,
    fever_action TEXT NOT NULL DEFAULT '',
    health_code  TEXT NOT NULL,
    travel       INTEGER NOT NULL DEFAULT 0,
    travel_where TEXT NOT NULL DEFAULT '',
    plate        TEXT NOT NULL DEFAULT '',
    destination  TEXT NOT NULL DEFAULT '',
    note         TEXT NOT NULL DEFAULT '',
    volunteer    TEXT NOT NULL DEFAULT '',
    self_registered INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX entries_site_time ON entries (site_id, recorded_at);
CREATE INDEX entries_recorded ON entries (recorded_at);
