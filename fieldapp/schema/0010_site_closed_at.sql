-- When a site was closed (`fieldapp site deactivate`), a UTC timestamp; NULL while it is open
-- (`activate` clears it). A day's roll-call lists the sites created by the day's end and not
-- closed before it began (gate/sites.py, open_on), so closing a site today leaves earlier
-- days' roll-calls as they were. Configuration: it flows down with the rest of the site's row.
-- A site closed before this column existed keeps NULL: when it closed is not known, so it is
-- taken as closed before every day, as the roll-call treated it until now.
ALTER TABLE sites ADD COLUMN closed_at TEXT;
