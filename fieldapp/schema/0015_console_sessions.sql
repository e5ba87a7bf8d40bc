-- A console session's server-side half: the random id its signed cookie carries. Signing out
-- deletes the row, so a copy of the cookie (a shared PC, a stolen cookie) no longer signs
-- anyone in; the account's other sessions keep theirs. A cookie without an id (signed in
-- before this migration) has no row: its holder is asked to sign in again. Rows older than
-- the session lifetime are purged at each sign-in (console/accounts.py).
CREATE TABLE console_sessions (
    id         TEXT PRIMARY KEY,                 -- secrets.token_urlsafe, in the cookie
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    started_at TEXT NOT NULL
);
CREATE INDEX console_sessions_started ON console_sessions (started_at);
