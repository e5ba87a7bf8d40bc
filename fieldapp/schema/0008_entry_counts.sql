-- Entries counted per site and local day, with how many in each local hour, kept in the
-- transaction that stores or purges them (fieldapp/gate/counts.py): the dashboard reads a row
-- per site instead of the day's entries. Derived data, never synced; `fieldapp init` fills it
-- from the entries (and again whenever the configured TIMEZONE is not the one it was made in).
CREATE TABLE entry_counts (
    day     TEXT NOT NULL,       -- local day, YYYY-MM-DD
    site_id TEXT NOT NULL,
    ins     INTEGER NOT NULL,
    outs    INTEGER NOT NULL,
    fevers  INTEGER NOT NULL,    -- temperature >= 37.3 at the gate (not as corrected)
    travels INTEGER NOT NULL,
    -- entries (in and out) per local hour: the hour at the start of their UTC hour
    h00     INTEGER NOT NULL DEFAULT 0,
    h01     INTEGER NOT NULL DEFAULT 0,
    h02     INTEGER NOT NULL DEFAULT 0,
    h03     INTEGER NOT NULL DEFAULT 0,
    h04     INTEGER NOT NULL DEFAULT 0,
    h05     INTEGER NOT NULL DEFAULT 0,
    h06     INTEGER NOT NULL DEFAULT 0,
    h07     INTEGER NOT NULL DEFAULT 0,
    h08     INTEGER NOT NULL DEFAULT 0,
    h09     INTEGER NOT NULL DEFAULT 0,
    h10     INTEGER NOT NULL DEFAULT 0,
    h11     INTEGER NOT NULL DEFAULT 0,
    h12     INTEGER NOT NULL DEFAULT 0,
    h13     INTEGER NOT NULL DEFAULT 0,
    h14     INTEGER NOT NULL DEFAULT 0,
    h15     INTEGER NOT NULL DEFAULT 0,
    h16     INTEGER NOT NULL DEFAULT 0,
    h17     INTEGER NOT NULL DEFAULT 0,
    h18     INTEGER NOT NULL DEFAULT 0,
    h19     INTEGER NOT NULL DEFAULT 0,
    h20     INTEGER NOT NULL DEFAULT 0,
    h21     INTEGER NOT NULL DEFAULT 0,
    h22     INTEGER NOT NULL DEFAULT 0,
    h23     INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (day, site_id)
);
