"""The coordinators' console: accounts and sign-in, the log, corrections, fever cases, today's
dashboard, exports, the audit log."""
