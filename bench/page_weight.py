"""What a phone downloads on its first visit to a gate page: HTML, CSS, JS, fonts, icons.

That includes the service worker and the app shell it fetches when it installs on that visit.

Serves the app in-process (Flask test client) on a fresh database with the demo, opens the demo
compound's gate page as an enrolled phone, fetches every stylesheet, script, icon and font the
page links to, and prints each one's bytes raw and gzip-compressed (level 6, what a reverse proxy
such as nginx uses by default). Target: the gzip total <= 60 KB.

    .venv/bin/python bench/page_weight.py
"""

from __future__ import annotations

import gzip
import json
import re
import sys
import tempfile
from pathlib import Path

from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fieldapp import create_app  # noqa: E402
from fieldapp.db import connect, migrate  # noqa: E402
from fieldapp.gate import demo  # noqa: E402
from fieldapp.instance import ensure_identity  # noqa: E402
from fieldapp.phones import devices  # noqa: E402
from sync import peers  # noqa: E402

TARGET = 60 * 1024
ASSET = re.compile(r'<(?:link[^>]+href|script[^>]+src|img[^>]+src)="(/[^"]+)"', re.IGNORECASE)
SHELL_LIST = re.compile(r"const SHELL_URLS = (\[.*?\]);")
CSS_URL = re.compile(r"url\(['\"]?(/[^)'\"]+)['\"]?\)")


def main() -> None:
    folder = Path(tempfile.mkdtemp())
    database = folder / "fieldapp.sqlite3"
    conn = connect(database)
    migrate(conn)
    ensure_identity(conn)
    app = create_app(
        {"DATABASE": str(database), "SECRET_KEY": "bench", "ID_KEY": Fernet.generate_key().decode()}
    )
    with app.app_context():
        demo.seed(conn)
    site = conn.execute("SELECT id, code FROM sites WHERE kind = 'residential'").fetchone()
    client = app.test_client()
    # An enrolled phone sees the gate form; others get the visitor's self-registration.
    _peer, token = peers.create(conn, "device", "bench", site["id"])
    client.set_cookie(devices.COOKIE, token)
    conn.close()

    page_url = f"/s/{site['code']}"
    html = client.get(page_url, headers={"Accept-Language": "zh-CN"})
    assert html.status_code == 200, html.status_code
    assert 'id="entry-form"' in html.get_data(as_text=True), "not the gate form"
    files = [(page_url, html.data)]
    queue = ASSET.findall(html.get_data(as_text=True))
    seen = {page_url}
    while queue:
        url = queue.pop(0).split("#")[0]
        if url in seen:
            continue
        seen.add(url)
        response = client.get(url)
        if response.status_code != 200:
            print(f"  (skipped {url}: {response.status_code})")
            continue
        body = response.data
        files.append((url, body))
        if url.endswith(".css"):
            queue.extend(CSS_URL.findall(body.decode("utf-8", "replace")))
        if url.endswith(".webmanifest"):
            queue.extend(i["src"] for i in json.loads(body)["icons"][:1])  # the one shown first
        if url == "/static/js/pwa.js":
            queue.append("/sw.js")  # registered on the first visit
        if url == "/sw.js":
            # The service worker's install fetches its app shell on that same visit.
            shell = SHELL_LIST.search(body.decode("utf-8"))
            queue.extend(json.loads(shell.group(1)) if shell else [])

    print("First visit to a gate page /s/<code>, zh-Hans, as an enrolled phone:")
    total_raw = total_gz = 0
    for url, body in files:
        packed = len(gzip.compress(body, compresslevel=6))
        total_raw += len(body)
        total_gz += packed
        name = "HTML /s/<code>" if url == page_url else url
        print(f"  {name:<32} {len(body):>8,} B raw {packed:>8,} B gzip")
    verdict = "within" if total_gz <= TARGET else "OVER"
    print(
        f"  {'total':<32} {total_raw:>8,} B raw {total_gz:>8,} B gzip"
        f"  ({total_gz / 1024:.1f} KB; target 60 KB: {verdict})"
    )


if __name__ == "__main__":
    main()
