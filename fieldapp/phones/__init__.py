"""Volunteers' phones: enrolment and device tokens, the app shell and service worker, importing
an outbox file a phone exported."""
