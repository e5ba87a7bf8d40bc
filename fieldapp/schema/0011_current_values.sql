-- The dashboard's counts (entry_counts) count each entry's current value since this version:
-- its corrections applied in recorded order, a voided entry not at all (fieldapp/gate/counts.py;
-- the comment of 0008 on `fevers` is out of date). The counts kept before counted the entries
-- as recorded, so they are made again: without the setting that says in which zone they were
-- made, `fieldapp init` (which applies this) counts every entry again, corrections included,
-- and the dashboard counts from the records until then. fever_cases_waiting (0009) also tells
-- the counts which entries come after a correction of them.
DELETE FROM settings WHERE name = 'entry_counts_zone';
