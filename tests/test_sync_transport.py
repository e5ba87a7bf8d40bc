"""sync.HttpTransport over a real socket on 127.0.0.1: a link that drops in the middle of an
answer is a SyncError (which `fieldapp sync --watch` reports and retries), never a crash."""

from __future__ import annotations

import socket
import threading

import pytest

from sync import HttpTransport, SyncError


def serve_once(reply: bytes) -> tuple[int, threading.Thread]:
    """A one-connection server: reads the request, sends `reply`, hangs up."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)

    def run() -> None:
        conn, _addr = listener.accept()
        with conn, listener:
            conn.settimeout(10)
            data = b""
            while b"\r\n\r\n" not in data:
                data += conn.recv(65536)
            head, _, body = data.partition(b"\r\n\r\n")
            length = next(
                (
                    int(h.split(b":")[1])
                    for h in head.split(b"\r\n")
                    if h.lower().startswith(b"content-length")
                ),
                0,
            )
            while len(body) < length:
                body += conn.recv(65536)
            conn.sendall(reply)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return listener.getsockname()[1], thread


@pytest.mark.parametrize(
    "reply",
    [
        # The answer cut off after 10 of its 100 bytes.
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n"
        b'{"results"',
        # Not HTTP at all.
        b"hello\r\n\r\n",
        # Hung up before answering.
        b"",
    ],
    ids=["cut-short", "not-http", "no-answer"],
)
def test_a_broken_answer_is_a_sync_error(reply):
    port, thread = serve_once(reply)
    with pytest.raises(SyncError, match=f"127.0.0.1:{port}"):
        HttpTransport(f"http://127.0.0.1:{port}", "token", timeout=10).push(b'{"records": []}')
    thread.join(timeout=10)


@pytest.fixture
def city(tmp_path):
    """A central served over HTTP on 127.0.0.1 (werkzeug, in a thread): (its URL, its app)."""
    from instances_support import make_instance
    from werkzeug.serving import make_server

    central = make_instance(tmp_path, "city")
    server = make_server("127.0.0.1", 0, central, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", central
    server.shutdown()
    thread.join()


@pytest.mark.parametrize(
    ("lang", "said"),
    [
        ("en_US.UTF-8", "The token is missing, wrong or revoked."),
        ("zh_TW.UTF-8", "權杖"),
        ("zh_CN.UTF-8", "令牌"),
    ],
)
def test_the_upstreams_refusal_is_in_the_operators_language(app, runner, city, lang, said):
    """The upstream words its refusals in the language the request asks for; `fieldapp sync`
    asks for its operator's, not the upstream's default (zh-Hans)."""
    import sync
    from fieldapp.db import connect, transaction

    url, central = city
    conn = connect(central.config["DATABASE"])
    with transaction(conn):
        _peer, token = sync.peers.create(conn, "instance", "office")
        sync.peers.revoke(conn, "instance", "office")
    conn.close()
    app.config.update(UPSTREAM_URL=url, UPSTREAM_TOKEN=token)
    result = runner.invoke(args=["sync"], env={"LANG": lang})
    assert result.exit_code == 1 and said in result.output, result.output
    status = runner.invoke(args=["sync", "--status"], env={"LANG": lang})
    assert said in status.output


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


PORTAL = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 38\r\n\r\n"
    b"<html><form>Sign in to WiFi</form></html>"[:38]
)


@pytest.mark.parametrize(
    ("lang", "said"),
    [
        ("zh_CN.UTF-8", "：连接被拒绝（对方的 fieldapp 是否在运行？）"),
        ("zh_TW.UTF-8", "：連線被拒絕（對方的 fieldapp 是否在執行？）"),
        ("en_US.UTF-8", ": the connection was refused (is fieldapp running there?)"),
    ],
)
def test_an_upstream_not_running_is_said_in_the_operators_language(app, runner, lang, said):
    """What failed on this side (the link) is worded here, not in Python's English."""
    url = f"http://127.0.0.1:{free_port()}"
    app.config.update(UPSTREAM_URL=url, UPSTREAM_TOKEN="token")
    result = runner.invoke(args=["sync"], env={"LANG": lang})
    assert result.exit_code == 1
    assert url + said in result.output, result.output
    assert "Errno" not in result.output
    status = runner.invoke(args=["sync", "--status"], env={"LANG": lang})
    assert url + said in status.output, status.output  # the round's error, as it was said


def test_a_sign_in_page_of_the_network_is_no_upstream(app, runner):
    """A hotel's or a site office's network answers every address with its sign-in page."""
    port, thread = serve_once(PORTAL)
    url = f"http://127.0.0.1:{port}"
    app.config.update(UPSTREAM_URL=url, UPSTREAM_TOKEN="token")
    result = runner.invoke(args=["sync"], env={"LANG": "zh_CN.UTF-8"})
    assert result.exit_code == 1
    assert f"{url} 有应答，但不是 fieldapp 实例的应答" in result.output, result.output
    thread.join(timeout=10)


def test_no_answer_in_time_is_told_apart_from_a_refusal():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)  # accepts, never answers
    with listener:
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        with pytest.raises(SyncError) as caught:
            HttpTransport(url, "token", timeout=0.5).cursor()
    assert caught.value.problem == "unreachable"
    assert caught.value.params["why"] == "timeout" and caught.value.params["url"] == url


def test_the_background_rounds_error_is_kept_in_the_servers_language(app, monkeypatch):
    """`fieldapp serve` syncs in a thread of its own: the error the console shows is worded."""
    from fieldapp import jobs
    from fieldapp.db import connect
    from fieldapp.syncing import upstream
    from sync import client as sync_client

    monkeypatch.setenv("LANG", "zh_CN.UTF-8")
    url = f"http://127.0.0.1:{free_port()}"
    app.config.update(UPSTREAM_URL=url, UPSTREAM_TOKEN="token")
    assert jobs.run_once(app, "sync", upstream.background_job)
    conn = connect(app.config["DATABASE"])
    error = sync_client.upstream_state(conn)["last_error"]
    conn.close()
    assert error == f"无法连接 {url}：连接被拒绝（对方的 fieldapp 是否在运行？）"
