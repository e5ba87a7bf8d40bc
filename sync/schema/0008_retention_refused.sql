-- The retention the upstream's last pull asked for that this instance cannot keep (outside its
-- range), as the upstream sent it; NULL when the upstream's was applied.
ALTER TABLE sync_upstream ADD COLUMN retention_refused TEXT;
