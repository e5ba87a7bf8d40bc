"""Instances in one test process: a fresh migrated instance app, and a sync round between two of
them through the real /sync/v1 endpoints (the central's test client as the transport)."""

from __future__ import annotations

from cryptography.fernet import Fernet

import sync
from fieldapp import create_app
from fieldapp.db import connect, migrate
from fieldapp.instance import ensure_identity
from fieldapp.syncing import configuration


class ClientTransport:
    """sync's Transport over a central app's test client: the real /sync/v1 endpoints."""

    def __init__(self, client, token: str) -> None:
        self.client, self.headers = client, {"Authorization": f"Bearer {token}"}

    def _answer(self, r):
        assert r.status_code == 200, r.get_data(as_text=True)
        return r.get_json()

    def cursor(self):
        return self._answer(self.client.get("/sync/v1/cursor", headers=self.headers))

    def push(self, body: bytes):
        r = self.client.post(
            "/sync/v1/push", data=body, headers=self.headers, content_type="application/json"
        )
        return self._answer(r)

    def pull(self, since: int, since_id: str | None = None):
        query = {"since": since} if since_id is None else {"since": since, "since_id": since_id}
        return self._answer(
            self.client.get("/sync/v1/pull", query_string=query, headers=self.headers)
        )


def make_instance(tmp_path, name):
    db_path = tmp_path / f"{name}.sqlite3"
    conn = connect(db_path)
    migrate(conn)
    ensure_identity(conn)
    conn.close()
    return create_app(
        {
            "TESTING": True,
            "DATABASE": str(db_path),
            "SECRET_KEY": "test",
            "ID_KEY": Fernet.generate_key().decode(),
            "BASE_URL": f"http://{name}.test",
        }
    )


def sync_up(down, central, token):
    """One round as `fieldapp sync` does it: push what waits, pull the configuration changed
    since the last pull."""
    conn = connect(down.config["DATABASE"])
    try:
        transport = ClientTransport(central.test_client(), token)
        with down.app_context():
            pushed = sync.push_pending(conn, down.extensions["fieldapp.records"], transport)
            configuration.pull(conn, transport)
    finally:
        conn.close()
    return pushed


def central_and_office(tmp_path):
    """A central with one site and a site office that pulled it: (central, office, token, site)."""
    from fieldapp.db import transaction
    from fieldapp.gate import sites

    central = make_instance(tmp_path, "city")
    conn = connect(central.config["DATABASE"])
    with central.app_context():
        site = sites.add_site(conn, "阳光花园小区", "residential", district="金坛区")["id"]
        with transaction(conn):
            _peer, token = sync.peers.create(conn, "instance", "office")
    conn.close()
    office = make_instance(tmp_path, "office")
    sync_up(office, central, token)
    return central, office, token, site


def rows(app, sql: str, *params) -> list:
    """A query's rows on an instance's database, as tuples."""
    conn = connect(app.config["DATABASE"])
    try:
        return [tuple(r) for r in conn.execute(sql, params).fetchall()]
    finally:
        conn.close()
