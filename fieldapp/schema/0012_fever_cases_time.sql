-- The log's and the exports' "fever only" filter reads the fever cases (each entry that is a
-- fever now, as corrected, and not void: fieldapp/console/logbook.py source()), newest first:
-- in the order of this index, a page at a time.
CREATE INDEX fever_cases_time ON fever_cases (recorded_at);
