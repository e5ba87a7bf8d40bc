-- Passes (出入证) and visitor registrations.
--
-- A roster person's pass carries a random token, not their name or number: reissuing a pass
-- gives a new token, and a card with the old one no longer opens anything. The token is
-- configuration like the rest of the roster row, so it flows down to site offices and phones.
ALTER TABLE roster ADD COLUMN pass_token TEXT NOT NULL DEFAULT '';
ALTER TABLE roster ADD COLUMN pass_issued_at TEXT NOT NULL DEFAULT '';
CREATE UNIQUE INDEX roster_pass_token ON roster (pass_token) WHERE pass_token != '';

-- A site without a volunteer at the gate lets a visitor take their own temperature.
ALTER TABLE sites ADD COLUMN self_service INTEGER NOT NULL DEFAULT 0 CHECK (self_service IN (0, 1));

-- An entry names the roster person it was filled from and the visitor's registration it
-- checked ('' for neither); no foreign keys, a record may arrive before what it names.
ALTER TABLE entries ADD COLUMN roster_id TEXT NOT NULL DEFAULT '';
ALTER TABLE entries ADD COLUMN registration_uuid TEXT NOT NULL DEFAULT '';
CREATE INDEX entries_registration ON entries (registration_uuid) WHERE registration_uuid != '';

-- A visitor's own registration from the poster: an append-only record; the gate staff's entry
-- that checks it points at it. Temperature only where the site is self-service.
CREATE TABLE registrations (
    id           INTEGER PRIMARY KEY,
    uuid         TEXT NOT NULL UNIQUE,
    hash         TEXT NOT NULL,
    origin       TEXT NOT NULL,
    device       TEXT,
    recorded_at  TEXT NOT NULL,
    received_at  TEXT NOT NULL,
    site_id      TEXT NOT NULL REFERENCES sites (id),
    direction    TEXT NOT NULL CHECK (direction IN ('in', 'out')),
    name         TEXT NOT NULL,
    phone        TEXT NOT NULL DEFAULT '',
    health_code  TEXT NOT NULL,
    travel       INTEGER NOT NULL DEFAULT 0,
    travel_where TEXT NOT NULL DEFAULT '',
    destination  TEXT NOT NULL DEFAULT '',
    temperature  REAL                            -- NULL: taken by the gate staff, not the visitor
);
CREATE INDEX registrations_site_time ON registrations (site_id, recorded_at);
CREATE INDEX registrations_recorded ON registrations (recorded_at);
