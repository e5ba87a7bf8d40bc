-- Each fever case's state, kept as the records it comes from are stored (fieldapp/console/
-- cases.py, refresh): a row per entry that is a case now (a fever at the gate or corrected
-- up to one, not void), with whether it is closed and acknowledged. The dashboard counts the
-- open cases from these rows instead of reading every fever of 21 days with its actions.
-- Derived, never synced; `fieldapp init` fills it from the records of an older database.
CREATE TABLE fever_cases (
    uuid         TEXT PRIMARY KEY,     -- the entry's
    site_id      TEXT NOT NULL,        -- the entry's, as recorded
    recorded_at  TEXT NOT NULL,        -- the entry's: when the case opened
    closed       INTEGER NOT NULL,     -- its last close or reopen is a close
    acknowledged INTEGER NOT NULL      -- it has an acknowledge action
);
CREATE INDEX fever_cases_open ON fever_cases (site_id, recorded_at, acknowledged) WHERE closed = 0;

-- Entries a correction names that were not stored yet (a batch stores a correction before an
-- entry it holds too, a relay may bring them in any order): when one comes, the correction
-- may make it a case. Almost always empty, so a push looks its entries up only then.
CREATE TABLE fever_cases_waiting (
    uuid TEXT PRIMARY KEY
);
