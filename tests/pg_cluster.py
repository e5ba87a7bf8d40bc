"""A throwaway PostgreSQL cluster for the tests (a support module, not a test module).

    with throwaway_cluster() as cluster:
        cluster.url                      # postgresql://postgres@127.0.0.1:PORT/fieldapp_test
        url = cluster.create_database()  # a fresh empty database from template0
        cluster.drop_database(url)

The cluster lives in a fresh folder under the temporary directory and listens on 127.0.0.1 only,
on a free port, with trust authentication and its Unix socket in that folder. It is tuned for
speed, not safety (fsync, synchronous_commit and full_page_writes off): it holds nothing worth
keeping. It is stopped and its folder removed when the block ends, and at interpreter exit if
the tests crash first. A cluster whose pytest was killed outright (SIGKILL, a CI timeout) is
stopped and removed by the next one that starts.

PostgreSQL refuses to run as root. When the tests run as root (as CI does) initdb and pg_ctl run
as the `postgres` OS user through runuser, and the folder belongs to that user; as any other user
they run directly as that user. The binaries are Debian's newest /usr/lib/postgresql/*/bin, else
initdb and pg_ctl on PATH, or FIELDAPP_TEST_PG_BINDIR when set.

The cluster is created with `-E UTF8 --locale=C`: text sorts by code point and lower(), upper()
and ILIKE fold ASCII letters only, which is what SQLite's BINARY collation, lower() and LIKE do,
so the same queries order and match the same way on both. Its time zone is UTC.
"""

from __future__ import annotations

import atexit
import glob
import os
import pwd
import re
import shutil
import socket
import stat
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

DIR_PREFIX = "fieldapp-pg-"
OWNER_FILE = "owner.pid"  # the pid of the process that started the cluster
SERVER_USER = "postgres"  # the OS user the server runs as when the tests run as root
DEFAULT_DBNAME = "fieldapp_test"

SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "wal_level": "minimal",
    "max_wal_senders": "0",
    "timezone": "'UTC'",
    "log_timezone": "'UTC'",
    "lc_messages": "'C'",
}

HBA = """\
# Throwaway test cluster: trust, and only over its private socket folder and 127.0.0.1.
local   all   all                 trust
host    all   all   127.0.0.1/32  trust
"""


class ClusterError(RuntimeError):
    """The test cluster could not be set up or started."""


def find_bindir() -> Path:
    """The folder holding initdb and pg_ctl: Debian's newest version, else PATH's."""
    override = os.environ.get("FIELDAPP_TEST_PG_BINDIR")
    if override:
        return Path(override)

    def version(path: str) -> tuple[int, ...]:
        return tuple(int(n) for n in re.findall(r"\d+", Path(path).parent.name))

    for bindir in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=version, reverse=True):
        if all(os.access(Path(bindir, tool), os.X_OK) for tool in ("initdb", "pg_ctl")):
            return Path(bindir)
    initdb = shutil.which("initdb")
    if initdb and shutil.which("pg_ctl", path=str(Path(initdb).parent)):
        return Path(initdb).parent
    raise ClusterError(
        "PostgreSQL's initdb and pg_ctl were not found in /usr/lib/postgresql/*/bin or on PATH "
        "(`make test` installs Debian's postgresql package)"
    )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _clean_env() -> dict[str, str]:
    """This environment without PG* variables (a PGDATA or PGPORT must not leak in)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["LC_ALL"] = "C"
    return env


def _base_dir() -> Path:
    """Where to make the cluster's folder: the temporary directory, if the server user can
    reach it (root's TMPDIR may be private to root), else /tmp."""
    base = Path(tempfile.gettempdir()).resolve()
    if os.geteuid() != 0:
        return base
    for folder in (base, *base.parents):
        if not folder.stat().st_mode & stat.S_IXOTH:
            return Path("/tmp")
    return base


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _run_as_server_user(
    *args: str | os.PathLike, cwd: Path | None, check: bool = True, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run a PostgreSQL tool: as the postgres OS user when we are root, else as ourselves."""
    cmd = [str(a) for a in args]
    if os.geteuid() == 0:
        cmd = ["runuser", "-u", SERVER_USER, "--", *cmd]
    proc = subprocess.run(
        cmd,
        cwd=cwd,  # root's working directory may be closed to the server user
        env=_clean_env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check and proc.returncode != 0:
        raise ClusterError(f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stdout}{proc.stderr}")
    return proc


def _stop_and_remove(folder: Path, bindir: Path) -> None:
    """Stop the server of the cluster in `folder` at once (if it runs) and remove the folder."""
    try:
        if (folder / "data" / "postmaster.pid").exists():
            _run_as_server_user(
                bindir / "pg_ctl",
                "stop",
                "-D",
                folder / "data",
                "-m",
                "immediate",
                "-w",
                cwd=folder,
                check=False,
                timeout=60,
            )
    finally:
        shutil.rmtree(folder, ignore_errors=True)


class PgCluster:
    """One throwaway cluster. start() and stop() it, or use throwaway_cluster()."""

    def __init__(
        self, dbname: str = DEFAULT_DBNAME, bindir: Path | None = None, settings: dict | None = None
    ):
        self.dbname = dbname
        self.settings = {**SETTINGS, **(settings or {})}  # a bench asks for a durable one
        self.bindir = bindir or find_bindir()
        self.host = "127.0.0.1"
        self.port: int | None = None
        self.folder: Path | None = None
        self._owner_pid: int | None = None
        if os.geteuid() == 0:
            try:
                self._server_user = pwd.getpwnam(SERVER_USER)
            except KeyError:
                raise ClusterError(
                    f"the tests run as root, and PostgreSQL refuses to: there is no "
                    f"{SERVER_USER!r} OS user to run it as"
                ) from None
            if not shutil.which("runuser"):
                raise ClusterError("the tests run as root and runuser (util-linux) is missing")

    def _tool(self, name: str) -> Path:
        return self.bindir / name

    def _run(self, *args: str | os.PathLike, check: bool = True):
        return _run_as_server_user(*args, cwd=self.folder, check=check)

    @property
    def datadir(self) -> Path:
        assert self.folder is not None
        return self.folder / "data"

    @property
    def logfile(self) -> Path:
        assert self.folder is not None
        return self.folder / "server.log"

    # -- URLs --------------------------------------------------------------------------------

    def url_for(self, dbname: str) -> str:
        if self.port is None:
            raise ClusterError("the cluster is not running")
        return f"postgresql://postgres@{self.host}:{self.port}/{dbname}"

    @property
    def url(self) -> str:
        """The URL of the cluster's own test database (fieldapp_test)."""
        return self.url_for(self.dbname)

    @property
    def admin_url(self) -> str:
        """The URL of the `postgres` maintenance database, for CREATE/DROP DATABASE."""
        return self.url_for("postgres")

    # -- life cycle --------------------------------------------------------------------------

    def start(self) -> PgCluster:
        if self.folder is not None:
            raise ClusterError("already started")
        sweep_stale_clusters()
        self.folder = Path(tempfile.mkdtemp(prefix=DIR_PREFIX, dir=_base_dir()))
        self._owner_pid = os.getpid()
        (self.folder / OWNER_FILE).write_text(f"{self._owner_pid}\n")
        atexit.register(self.stop)
        try:
            if os.geteuid() == 0:
                os.chown(self.folder, self._server_user.pw_uid, self._server_user.pw_gid)
            self._initdb()
            for attempt in range(5):
                self.port = free_port()
                self.logfile.unlink(missing_ok=True)  # judge this attempt by its own log
                proc = self._run(
                    self._tool("pg_ctl"),
                    "start",
                    "-D",
                    self.datadir,
                    "-l",
                    self.logfile,
                    "-w",
                    "-t",
                    "60",
                    "-o",
                    f"-p {self.port}",
                    check=False,
                )
                if proc.returncode == 0:
                    break
                log = self.logfile.read_text(errors="replace") if self.logfile.exists() else ""
                if "already in use" not in log or attempt == 4:  # another took the port: retry
                    raise ClusterError(
                        f"pg_ctl start exited {proc.returncode}:\n{proc.stdout}{proc.stderr}\n"
                        f"server log:\n{log[-4000:]}"
                    )
            self._wait_ready()
            self.create_database(self.dbname)
        except BaseException:
            self.stop()
            raise
        return self

    def _initdb(self) -> None:
        self._run(
            self._tool("initdb"),
            "-D",
            self.datadir,
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
            "--no-instructions",
        )
        conf = self.datadir / "postgresql.conf"
        lines = [f"{k} = {v}" for k, v in self.settings.items()]
        lines.append(f"unix_socket_directories = '{self.folder}'")
        with conf.open("a") as f:  # appending keeps the file the server user's
            f.write("\n# fieldapp test cluster\n" + "\n".join(lines) + "\n")
        (self.datadir / "pg_hba.conf").write_text(HBA)

    def _wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with psycopg.connect(self.admin_url, connect_timeout=2):
                    return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def stop(self) -> None:
        """Stop the server at once and remove its folder. Safe to call twice; does nothing in
        a process forked from the one that started it (its atexit must not end the cluster)."""
        if self.folder is None or os.getpid() != self._owner_pid:
            return
        folder, self.folder, self.port = self.folder, None, None
        atexit.unregister(self.stop)
        _stop_and_remove(folder, self.bindir)

    # -- databases ---------------------------------------------------------------------------

    def create_database(
        self,
        name: str | None = None,
        *,
        prefix: str = "t",
        template: str = "template0",
        strategy: str | None = "FILE_COPY",
        locale: str | None = None,
    ) -> str:
        """Create a database (a unique name unless given) as a copy of template (template0:
        empty) and return its URL. No one may be connected to the template meanwhile.
        FILE_COPY copies a template that holds tables about twice as fast as PostgreSQL's
        default WAL_LOG does here (fsync is off, so its checkpoints cost little), and an empty
        one as fast; strategy=None leaves the choice to the server. locale (from template0):
        another than the cluster's C, as a central's database made by a plain `createdb` on a
        host whose locale is C.UTF-8 or en_US.UTF-8 has; FIELDAPP_TEST_PG_LOCALE=C.UTF-8 gives
        every database of a run that locale (a copy of another database keeps its own)."""
        name = name or f"{prefix}_{uuid.uuid4().hex[:12]}"
        query = sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
            sql.Identifier(name), sql.Identifier(template)
        )
        if strategy:
            query += sql.SQL(" STRATEGY {}").format(sql.Identifier(strategy.lower()))
        locale = locale or os.environ.get("FIELDAPP_TEST_PG_LOCALE")
        if locale and template == "template0":
            query += sql.SQL(" LOCALE {}").format(sql.Literal(locale))
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(query)
        return self.url_for(name)

    def drop_database(self, name_or_url: str) -> None:
        """Drop a database, ending any connection still open to it (a leaked pool's)."""
        name = urlsplit(name_or_url).path.lstrip("/") if "://" in name_or_url else name_or_url
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )

    def schema_url(self, schema: str, dbname: str | None = None) -> str:
        """A URL whose connections find unqualified names in `schema` (search_path)."""
        parts = urlsplit(self.url_for(dbname or self.dbname))
        return urlunsplit(parts._replace(query=f"options=-csearch_path%3D{schema}"))


def truncate_all(url: str, schema: str = "public", keep: tuple[str, ...] = ()) -> None:
    """Empty every table of `schema` but those in `keep` in one TRUNCATE (sequences restart):
    the cheapest reset of a database migrated once and shared by many tests."""
    with psycopg.connect(url, autocommit=True) as conn:
        tables = [
            sql.Identifier(schema, name)
            for (name,) in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = %s ORDER BY tablename",
                (schema,),
            )
            if name not in keep
        ]
        if tables:
            conn.execute(
                sql.SQL("TRUNCATE {} RESTART IDENTITY CASCADE").format(sql.SQL(", ").join(tables))
            )


@contextmanager
def throwaway_cluster(
    dbname: str = DEFAULT_DBNAME, settings: dict | None = None
) -> Iterator[PgCluster]:
    """Start a cluster with an empty database `dbname` (postgresql.conf settings to override
    the test ones, if given); yield it; stop it and remove it."""
    cluster = PgCluster(dbname, settings=settings).start()
    try:
        yield cluster
    finally:
        cluster.stop()


def sweep_stale_clusters() -> None:
    """Stop and remove the clusters left by test runs that were killed (their starting
    process is gone). Folders this user may not touch are left alone."""
    for base in {Path(tempfile.gettempdir()).resolve(), Path("/tmp")}:
        for folder in base.glob(DIR_PREFIX + "*"):
            try:
                owner = int((folder / OWNER_FILE).read_text())
            except (OSError, ValueError):
                continue
            if _pid_alive(owner):
                continue
            try:
                _stop_and_remove(folder, find_bindir())
            except (OSError, ClusterError, subprocess.SubprocessError):
                shutil.rmtree(folder, ignore_errors=True)
