-- Daily reports (日报告 / 零报告): one append-only record per submission. A correction is a new
-- report whose `supersedes` names the one it replaces; the current report of a site and day is
-- the one nobody supersedes. Counts only, no personal data: kept REPORT_RETENTION_DAYS.
CREATE TABLE daily_reports (
    id               INTEGER PRIMARY KEY,
    uuid             TEXT NOT NULL UNIQUE,
    hash             TEXT NOT NULL,
    origin           TEXT NOT NULL,
    device           TEXT,
    recorded_at      TEXT NOT NULL,              -- when it was submitted (device clock, UTC)
    received_at      TEXT NOT NULL,
    site_id          TEXT NOT NULL REFERENCES sites (id),
    day              TEXT NOT NULL,              -- local date (TIMEZONE), YYYY-MM-DD
    zero             INTEGER NOT NULL DEFAULT 0 CHECK (zero IN (0, 1)),
    supersedes       TEXT NOT NULL DEFAULT '',   -- uuid of the report this one replaces
    reporter         TEXT NOT NULL DEFAULT '',
    remarks          TEXT NOT NULL DEFAULT '',
    in_resident      INTEGER NOT NULL DEFAULT 0,
    in_worker        INTEGER NOT NULL DEFAULT 0,
    in_visitor       INTEGER NOT NULL DEFAULT 0,
    in_delivery      INTEGER NOT NULL DEFAULT 0,
    in_other         INTEGER NOT NULL DEFAULT 0,
    out_resident     INTEGER NOT NULL DEFAULT 0,
    out_worker       INTEGER NOT NULL DEFAULT 0,
    out_visitor      INTEGER NOT NULL DEFAULT 0,
    out_delivery     INTEGER NOT NULL DEFAULT 0,
    out_other        INTEGER NOT NULL DEFAULT 0,
    fevers           INTEGER NOT NULL DEFAULT 0,
    fever_refused    INTEGER NOT NULL DEFAULT 0,
    fever_clinic     INTEGER NOT NULL DEFAULT 0,
    fever_remeasured INTEGER NOT NULL DEFAULT 0,
    fever_other      INTEGER NOT NULL DEFAULT 0,
    travel           INTEGER NOT NULL DEFAULT 0,
    code_red         INTEGER NOT NULL DEFAULT 0,
    code_yellow      INTEGER NOT NULL DEFAULT 0,
    vehicles         INTEGER NOT NULL DEFAULT 0
);
-- The roll-call reads one day's reports for every site: (day, site_id) keeps it off the entries.
CREATE INDEX daily_reports_day_site ON daily_reports (day, site_id, recorded_at);
CREATE INDEX daily_reports_supersedes ON daily_reports (supersedes) WHERE supersedes != '';

-- Every purge, for the audit trail and for "once a day" in the background job.
CREATE TABLE purge_log (
    id              INTEGER PRIMARY KEY,
    ran_at          TEXT NOT NULL,               -- UTC
    local_day       TEXT NOT NULL,               -- TIMEZONE date it ran on
    horizon         TEXT NOT NULL,               -- entries recorded before this were deleted
    report_horizon  TEXT NOT NULL,               -- reports of days before this were deleted
    entries         INTEGER NOT NULL,
    dependents      INTEGER NOT NULL,            -- rows of other kinds that pointed at them
    reports         INTEGER NOT NULL,
    rejects         INTEGER NOT NULL,            -- refused sync bodies past the horizon
    trigger         TEXT NOT NULL                -- 'cli' or 'background'
);
CREATE INDEX purge_log_day ON purge_log (local_day);
