-- Screening (排查): campaigns are configuration (owned by the central, versioned, they flow down
-- like sites and rosters); each answer and each follow-up step is an append-only record.

CREATE TABLE screening_campaigns (
    id          TEXT PRIMARY KEY,                -- UUID, the same on every instance
    name        TEXT NOT NULL,
    all_sites   INTEGER NOT NULL DEFAULT 0 CHECK (all_sites IN (0, 1)),
    districts   TEXT NOT NULL DEFAULT '[]',      -- JSON list of district names it covers
    sites       TEXT NOT NULL DEFAULT '[]',      -- JSON list of site ids it covers
    start_day   TEXT NOT NULL,                   -- local dates (TIMEZONE), YYYY-MM-DD
    end_day     TEXT NOT NULL DEFAULT '',        -- '' while it runs on
    daily       INTEGER NOT NULL DEFAULT 1 CHECK (daily IN (0, 1)),  -- everyone, every day
    questions   TEXT NOT NULL,                   -- comma list of the questions it asks
    active      INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
    version     INTEGER NOT NULL,
    created_at  TEXT NOT NULL
);

-- One answer about one person on one day. A person is a roster row (person_id = roster.id) or,
-- added on the phone (added = 1), someone only this campaign knows, named in the answer itself.
-- The person's answer of a day is the latest recorded (then the greatest uuid, the same on every
-- instance). Questions the campaign does not ask are stored empty.
CREATE TABLE screenings (
    id                INTEGER PRIMARY KEY,
    uuid              TEXT NOT NULL UNIQUE,
    hash              TEXT NOT NULL,
    origin            TEXT NOT NULL,
    device            TEXT,
    recorded_at       TEXT NOT NULL,
    received_at       TEXT NOT NULL,
    campaign_id       TEXT NOT NULL,             -- no FK: config and records travel apart
    site_id           TEXT NOT NULL,
    person_id         TEXT NOT NULL,
    day               TEXT NOT NULL,             -- local date of the screening
    added             INTEGER NOT NULL DEFAULT 0 CHECK (added IN (0, 1)),
    name              TEXT NOT NULL DEFAULT '',  -- only for an added person
    phone             TEXT NOT NULL DEFAULT '',
    unit              TEXT NOT NULL DEFAULT '',
    person_type       TEXT NOT NULL DEFAULT '',
    whereabouts       TEXT NOT NULL DEFAULT '',
    whereabouts_where TEXT NOT NULL DEFAULT '',
    contact           TEXT NOT NULL DEFAULT '',
    status            TEXT NOT NULL DEFAULT '',
    nat_result        TEXT NOT NULL DEFAULT '',
    nat_date          TEXT NOT NULL DEFAULT '',
    vaccine_doses     TEXT NOT NULL DEFAULT '',
    screener          TEXT NOT NULL DEFAULT '',
    note              TEXT NOT NULL DEFAULT ''
);
-- A day of a campaign, site by site and person by person (tallies, rebuilding them, coverage).
CREATE INDEX screenings_day ON screenings (campaign_id, day, site_id, person_id, recorded_at);
-- A site's people through the whole campaign (the phone's list, last answers, follow-ups).
CREATE INDEX screenings_site ON screenings (campaign_id, site_id, person_id, recorded_at);
CREATE INDEX screenings_recorded ON screenings (recorded_at);
CREATE INDEX screenings_added ON screenings (campaign_id, site_id, person_id, day) WHERE added = 1;
CREATE INDEX screenings_isolating ON screenings (campaign_id, site_id, person_id)
    WHERE status IN ('home_isolation', 'medical_observation');

-- A follow-up step (temperature check, close with an outcome, reopen, note) about a person whose
-- answer put them in home isolation or medical observation; the follow-up itself is derived.
CREATE TABLE screening_actions (
    id          INTEGER PRIMARY KEY,
    uuid        TEXT NOT NULL UNIQUE,
    hash        TEXT NOT NULL,
    origin      TEXT NOT NULL,
    device      TEXT,
    recorded_at TEXT NOT NULL,
    received_at TEXT NOT NULL,
    campaign_id TEXT NOT NULL,
    site_id     TEXT NOT NULL,
    person_id   TEXT NOT NULL,
    action      TEXT NOT NULL,
    temperature REAL,
    outcome     TEXT NOT NULL DEFAULT '',
    note        TEXT NOT NULL DEFAULT '',
    author      TEXT NOT NULL
);
CREATE INDEX screening_actions_person ON screening_actions (campaign_id, person_id, recorded_at);
CREATE INDEX screening_actions_recorded ON screening_actions (recorded_at);

-- Derived, never synced: per campaign, day and site, the counts of the people's answers of that
-- day (JSON object), kept in the transaction that stores the answers (fieldapp/screening/tallies.py)
-- so that a city's coverage reads 5,000 rows instead of half a million answers.
CREATE TABLE screening_tallies (
    campaign_id TEXT NOT NULL,
    day         TEXT NOT NULL,
    site_id     TEXT NOT NULL,
    counts      TEXT NOT NULL,
    PRIMARY KEY (campaign_id, day, site_id)
);

-- What a purge deleted besides entries and their dependents (screening answers, their steps).
ALTER TABLE purge_log ADD COLUMN others INTEGER NOT NULL DEFAULT 0;
