"""A streamed CSV export cut by an error, as a browser or curl sees it from waitress (the
server `fieldapp serve` runs): never a download that looks complete."""

from __future__ import annotations

import contextlib
import http.client
import re
import threading
import urllib.parse

import pytest
import waitress
from console_support import PASSWORD, make_site, make_user, save, wire_entry
from waitress import wasyncore

from fieldapp.console import exports

pytestmark = pytest.mark.sqlite_only

REPEATS = 2000  # the first chunk sent again and again: enough for gzip to send some of it


@pytest.fixture
def served(app):
    """The app under waitress in this process, as `fieldapp serve` runs it; its port."""
    server = waitress.create_server(app, host="127.0.0.1", port=0, threads=2, ident="fieldapp")
    stop = threading.Event()

    def run() -> None:  # server.run() until stop, then closed by its own thread
        while not stop.is_set():
            wasyncore.loop(timeout=0.05, map=server._map, count=1)
        server.task_dispatcher.shutdown()
        wasyncore.close_all(server._map)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    yield server.effective_port
    stop.set()
    thread.join(timeout=10)


class Browser:
    """HTTP requests that keep the session cookie, one connection each; HTTP/1.0 if asked."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.cookie = ""

    @contextlib.contextmanager
    def request(self, method, path, form=None, http10=False, **headers):
        """The response, its connection closed when done."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        if http10:
            conn._http_vsn, conn._http_vsn_str = 10, "HTTP/1.0"
        body = urllib.parse.urlencode(form) if form is not None else None
        sent = {"Cookie": self.cookie, **headers}
        if body is not None:
            sent["Content-Type"] = "application/x-www-form-urlencoded"
        conn.request(method, path, body=body, headers=sent)
        response = conn.getresponse()
        for value in response.msg.get_all("Set-Cookie") or ():
            self.cookie = value.split(";", 1)[0]
        try:
            yield response
        finally:
            response.close()
            conn.close()

    def page(self, path: str) -> str:
        with self.request("GET", path) as response:
            return response.read().decode()

    def token(self) -> str:
        html = self.page("/console/login")
        return re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html).group(1)

    def sign_in(self, name: str) -> None:
        form = {"csrf_token": self.token(), "name": name, "password": PASSWORD}
        with self.request("POST", "/console/login", form) as response:
            response.read()
        assert response.status == 302


@pytest.fixture
def cut_export(app, monkeypatch):
    """An instance whose export rows fail after REPEATS chunks of 3 rows (a disk error)."""
    site = make_site(app)
    save(app, *(wire_entry(site["id"], name=f"张{i}") for i in range(3)))
    make_user(app, "root", "admin")
    real_rows = exports.rows

    def failing_rows(*args, **kwargs):
        first = next(real_rows(*args, **kwargs))
        for _ in range(REPEATS):
            yield first
        raise OSError("disk I/O error")

    monkeypatch.setattr(exports, "rows", failing_rows)


def post_export(browser, **kwargs):
    browser.sign_in("root")
    form = {"csrf_token": browser.token(), "format": "csv"}
    return browser.request("POST", "/console/export", form, **kwargs)


@pytest.mark.parametrize("encoding", ["identity", "gzip", "br"])
def test_a_cut_csv_export_is_an_incomplete_download(served, cut_export, caplog, encoding):
    """HTTP/1.1: whatever the compression, the client never gets the chunked body's end (or,
    when nothing was sent yet, a 500): it marks the download failed."""
    with post_export(Browser(served), **{"Accept-Encoding": encoding}) as response:
        if response.status == 200:  # sent before the error
            assert response.getheader("Transfer-Encoding") == "chunked"
            with pytest.raises(http.client.IncompleteRead):
                response.read()
        else:  # brotli keeps its first megabytes: nothing was sent yet
            assert encoding == "br" and response.status == 500
    logged = [r.getMessage() for r in caplog.records if r.name == "fieldapp.console.views"]
    assert logged == [f"CSV export by root cut after {3 * REPEATS} rows: OSError('disk I/O error')"]


def test_a_cut_csv_export_says_so_in_its_last_line(served, cut_export):
    """HTTP/1.0 has no chunks: the connection's close is the body's end, so a cut looks like a
    whole file. Its last line says it is not."""
    with post_export(Browser(served), http10=True, **{"Accept-Encoding": "identity"}) as response:
        assert response.status == 200
        lines = response.read().decode("utf-8-sig").splitlines()
    assert lines[0].startswith("时间,场所")
    assert len(lines) == 1 + 3 * REPEATS + 1
    assert (
        lines[-1]
        == f"导出不完整：出错中断，已写出 {3 * REPEATS} 条登记；此文件不是完整的导出，请重新导出。"
    )
    assert "张0" in lines[-2]


def test_a_whole_csv_export_has_no_such_line(served, app):
    site = make_site(app)
    save(app, wire_entry(site["id"], name="张建国"))
    make_user(app, "root", "admin")
    with post_export(Browser(served), **{"Accept-Encoding": "identity"}) as response:
        lines = response.read().decode("utf-8-sig").splitlines()
    assert len(lines) == 2 and "张建国" in lines[1]
