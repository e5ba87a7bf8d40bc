-- A past day's screening coverage counts the people on a site's roster that day: those on it
-- now and those taken off after the day ended (deactivated_at), made before it ended
-- (fieldapp/screening/coverage.py). With deactivated_at in the index, a day's roster sizes are
-- still counted from the index alone.
DROP INDEX roster_site;
CREATE INDEX roster_site ON roster (site_id, active, created_at, deactivated_at);
