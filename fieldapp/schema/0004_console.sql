-- Coordinator console: accounts and their scope, login throttling, the audit log, and the two
-- append-only record kinds the console writes (corrections, fever-case actions).

CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE COLLATE NOCASE,
    role          TEXT NOT NULL CHECK (role IN ('admin', 'coordinator', 'viewer')),
    password_hash TEXT NOT NULL,                 -- argon2id
    active        INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
    created_at    TEXT NOT NULL,
    password_at   TEXT NOT NULL                  -- sessions made before this are refused
);

-- What a coordinator (or a viewer) may see: whole districts or single sites.
CREATE TABLE user_scopes (
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind    TEXT NOT NULL CHECK (kind IN ('site', 'district')),
    value   TEXT NOT NULL,                       -- a site id (UUID) or a district name
    PRIMARY KEY (user_id, kind, value)
);

-- Failed logins, kept in the database so the limit holds across worker processes.
CREATE TABLE login_failures (
    id      INTEGER PRIMARY KEY,
    account TEXT NOT NULL COLLATE NOCASE,
    ip      TEXT NOT NULL,
    at      TEXT NOT NULL
);
CREATE INDEX login_failures_account ON login_failures (account, at);
CREATE INDEX login_failures_ip ON login_failures (ip, at);

CREATE TABLE audit_log (
    id     INTEGER PRIMARY KEY,
    at     TEXT NOT NULL,
    actor  TEXT NOT NULL,                        -- user name, or cli:<os user>
    action TEXT NOT NULL,
    target TEXT NOT NULL DEFAULT '',
    detail TEXT NOT NULL DEFAULT '',
    ip     TEXT NOT NULL DEFAULT ''
);
CREATE INDEX audit_log_action ON audit_log (action, id);

-- A correction or a void of an entry: a new record pointing at the entry, never an edit.
CREATE TABLE corrections (
    id          INTEGER PRIMARY KEY,
    uuid        TEXT NOT NULL UNIQUE,
    hash        TEXT NOT NULL,
    origin      TEXT NOT NULL,
    device      TEXT,
    recorded_at TEXT NOT NULL,
    received_at TEXT NOT NULL,
    entry_uuid  TEXT NOT NULL,                   -- no FK: a record may arrive before its entry
    changes     TEXT NOT NULL DEFAULT '{}',      -- JSON object: field -> new value
    void        INTEGER NOT NULL DEFAULT 0 CHECK (void IN (0, 1)),
    reason      TEXT NOT NULL,
    author      TEXT NOT NULL
);
CREATE INDEX corrections_entry ON corrections (entry_uuid, recorded_at);

-- One step of a fever case's follow-up; the case itself is derived from the entry.
CREATE TABLE case_actions (
    id          INTEGER PRIMARY KEY,
    uuid        TEXT NOT NULL UNIQUE,
    hash        TEXT NOT NULL,
    origin      TEXT NOT NULL,
    device      TEXT,
    recorded_at TEXT NOT NULL,
    received_at TEXT NOT NULL,
    entry_uuid  TEXT NOT NULL,
    action      TEXT NOT NULL,
    temperature REAL,
    outcome     TEXT NOT NULL DEFAULT '',
    note        TEXT NOT NULL DEFAULT '',
    author      TEXT NOT NULL
);
CREATE INDEX case_actions_entry ON case_actions (entry_uuid, recorded_at);

-- The log pages newest first by (recorded_at, id); these keep each page an index walk.
CREATE INDEX entries_fever ON entries (recorded_at) WHERE temperature >= 37.3;
CREATE INDEX entries_travel ON entries (recorded_at) WHERE travel = 1;
-- The dashboard reads a day of entries from this index alone, without the table.
CREATE INDEX entries_day ON entries (recorded_at, site_id, direction, travel, temperature);
