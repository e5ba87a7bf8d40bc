-- The outcome of the last backup of the SQLite file (`fieldapp backup`, and the daily one
-- `fieldapp serve` makes into BACKUP_DIR), for the console's dashboard: a failing backup (a full
-- disk, a folder that cannot be written) is seen where the operator looks, not only in the
-- server's log. Why it failed is kept as JSON, {"folder", "errno" | "problem" and "params",
-- "error" (the system's own text)}, and worded when read, in the reader's language
-- (db/backup.py). One row. On PostgreSQL (backed up with pg_dump) it stays empty.
CREATE TABLE backup_status (
    id        INTEGER PRIMARY KEY CHECK (id = 1),
    made_at   TEXT,                -- when the last backup was made (UTC ISO 8601)
    made_file TEXT,                -- its file
    failed_at TEXT,                -- when the last attempt failed; NULL once one succeeds
    failure   TEXT                 -- why, as above
);
INSERT INTO backup_status (id) VALUES (1);
