-- When a roster row was made (UTC, as stored timestamps; it flows down with the row), so that a
-- past day's screening coverage counts the roster as it was that day and does not move when
-- people join later (fieldapp/screening/coverage.py). '' for rows made before this column: no
-- one knows when, so they count on every day. Nothing removes a person from a roster (active
-- stays 1), so no time of leaving is kept.
ALTER TABLE roster ADD COLUMN created_at TEXT NOT NULL DEFAULT '';
-- A day's roster sizes are counted from the index alone, as before the column.
DROP INDEX roster_site;
CREATE INDEX roster_site ON roster (site_id, active, created_at);
-- A person on a site's roster is their name and phone (roster.import_rows): how an import
-- finds them, and how screening finds the roster row made for someone added on site.
CREATE INDEX roster_person ON roster (site_id, name, phone);
