-- A hash chain over the change log: chain(n) = H(chain(n-1) + uuid(n)), stored with each row.
-- The cursor an upstream keeps names the chain at its seq, so a downstream restored from an
-- older copy notices its log diverged anywhere before that seq, not only at it (a middle tier
-- that re-receives the same records after a restore can land the same uuid on the same seq).
ALTER TABLE changes ADD COLUMN chain TEXT;
ALTER TABLE sync_cursors ADD COLUMN chain TEXT;
