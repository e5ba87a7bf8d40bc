-- Every time a site was closed (`fieldapp site deactivate`) and, if so, opened again
-- (`activate`): UTC timestamps. sites.closed_at says only whether and since when a site is
-- closed now; opening it again clears it, so without these rows a site closed for the Spring
-- Festival and opened again would be back on the roll-call of every day it was closed
-- (gate/sites.py, open_on). Configuration: it flows down inside the site's row ("closures").
CREATE TABLE site_closures (
    site_id   TEXT NOT NULL REFERENCES sites (id),
    closed_at TEXT NOT NULL,
    opened_at TEXT,
    PRIMARY KEY (site_id, closed_at)
);
-- The closures known so far: those of the sites closed now (since 0010).
INSERT INTO site_closures (site_id, closed_at)
    SELECT id, closed_at FROM sites WHERE active = 0 AND closed_at IS NOT NULL;
