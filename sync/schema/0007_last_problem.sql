-- What the last round's error was, as sync/ and the app name it (SyncError.problem and params,
-- JSON): the status words it when it is shown, in the language of whoever reads it. last_error
-- keeps the words of the moment, for rows from before this and errors without a name.
ALTER TABLE sync_upstream ADD COLUMN last_problem TEXT;
