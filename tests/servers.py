"""Real instances for the tests: a `fieldapp serve` process on a fresh folder, its CLI, its
database; and making a browser an enrolled gate phone of one of them."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from wait import wait_until

CHROMIUM = "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parents[1]
FIELDAPP = [sys.executable, "-m", "fieldapp.cli"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    """A fieldapp instance served in its own process: waitress on its SQLite file, or, with a
    database_url, on PostgreSQL (serve_args ("--workers", "4") for gunicorn's processes)."""

    folder: Path
    port: int
    env: dict = field(default_factory=dict)
    proc: subprocess.Popen | None = None
    serve_args: tuple[str, ...] = ()  # more options for `fieldapp serve` (--workers 4)
    prefix: tuple[str, ...] = ()  # a command `fieldapp serve` runs under

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def database(self) -> Path:
        return self.folder / "fieldapp.sqlite3"

    @property
    def target(self) -> str:
        """Where its data is: its PostgreSQL URL, or its SQLite file."""
        return self.env.get("FIELDAPP_DATABASE_URL") or str(self.database)

    def cli(
        self, *args: str, check: bool = True, input: str | None = None
    ) -> subprocess.CompletedProcess:
        """Run `fieldapp ARGS` against this instance's folder (input: its standard input)."""
        return subprocess.run(
            FIELDAPP + list(args),
            env=self.env,
            cwd=ROOT,
            input=input,
            capture_output=True,
            text=True,
            check=check,
            timeout=120,
        )

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [*self.prefix, *FIELDAPP, "serve", "--port", str(self.port), *self.serve_args],
            env=self.env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,  # its workers too are stopped or killed as one group
        )
        wait_until(self.answers, 30, "fieldapp serve answers /ping")

    def answers(self) -> bool:
        """Whether the instance answers its ping."""
        try:
            with urllib.request.urlopen(self.url + "/ping", timeout=1) as response:
                return response.status == 200
        except OSError:
            return False

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=30)
        if self.proc and self.proc.stderr and not self.proc.stderr.closed:
            self.proc.stderr.close()  # an unclosed pipe is a ResourceWarning, an error here

    def kill(self) -> None:
        """SIGKILL the instance and every process of its: no clean shutdown at all."""
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        self.proc.stderr.close()

    def query(self, sql: str, params: tuple = ()) -> list:
        """Read the instance's database directly (either engine)."""
        from fieldapp.db import connect
        from fieldapp.db.postgres import row_class

        conn = connect(self.target)
        try:
            cur = conn.execute(sql, params)
            names = tuple(d[0] for d in cur.description or ())
            # The same row type from either engine, so two instances' rows compare equal.
            return [row_class(names)(row) for row in cur.fetchall()]
        finally:
            conn.close()


def make_server(
    folder: Path, demo: bool = True, database_url: str | None = None, **settings: str
) -> Server:
    """A new instance in folder (init, and the demo sites unless demo=False), not started yet;
    on PostgreSQL when database_url names an empty database."""
    folder.mkdir(parents=True, exist_ok=True)
    if database_url:  # in instance/config.py as docs/postgresql.md says, and in the environment
        settings["DATABASE_URL"] = database_url
        (folder / "config.py").write_text(f"DATABASE_URL = {database_url!r}\n")
    port = free_port()
    env = dict(
        os.environ, FIELDAPP_INSTANCE=str(folder), FIELDAPP_BASE_URL=f"http://127.0.0.1:{port}"
    )
    env.update({f"FIELDAPP_{k}": v for k, v in settings.items()})
    env.pop("FLASK_APP", None)
    server = Server(folder, port, env)
    server.cli("init")
    if demo:
        server.cli("demo")
    return server


def enrol_browser(server: Server, page, name: str = "测试手机") -> str:
    """Enrol the browser of `page` as a gate phone of the first site; leave it on the gate page."""
    code = server.query("SELECT code FROM sites WHERE active = 1 ORDER BY name LIMIT 1")[0][0]
    link = server.cli("device", "enrol", "--site", code, "--name", name).stdout.strip()
    page.goto(link)
    page.click("form button[type=submit]")
    page.click("#open-gate")
    page.wait_for_selector("#entry-form")
    return code


def enrol_cookie(server: Server, context, site_id: str, name: str = "门岗1号") -> None:
    """Make the browser an enrolled gate phone directly: a new device's token as its cookie."""
    from fieldapp.db import connect
    from fieldapp.phones import devices
    from sync import peers

    conn = connect(server.target)
    try:
        _peer, token = peers.create(conn, "device", name, site_id)
    finally:
        conn.close()
    context.add_cookies([{"name": devices.COOKIE, "value": token, "url": server.url}])
