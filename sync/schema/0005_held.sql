-- Downstream side: records of our change log the upstream could not store at all (it answered
-- 5xx or nonsense for any batch holding one, and a plain answer to an empty batch). The cursor
-- moves past them so that every other record still goes; each round tries them again, and a
-- row leaves this table once the upstream has answered for its record.
CREATE TABLE sync_held (
    seq      INTEGER PRIMARY KEY,           -- its place in our change log
    kind     TEXT NOT NULL,
    uuid     TEXT NOT NULL,
    reason   TEXT NOT NULL,                 -- what the upstream answered, for the operator
    held_at  TEXT NOT NULL,
    tries    INTEGER NOT NULL DEFAULT 1
);
