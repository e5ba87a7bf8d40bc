"""What crosses the wire to a phone with one bar: every text answer compressed, static files
under hashed names, precompressed and kept by the browser for a year.

- Answers of the app: Flask-Compress, brotli or gzip as the browser accepts, `Vary:
  Accept-Encoding` on every answer. Not compressed: types that are compressed already (PNG,
  PDF, XLSX), bodies under 500 bytes, and errors (the library compresses 2xx only). A streamed
  CSV export is compressed as it streams.
- Static files: at start-up each file under static/ gets a name with its content's hash
  (css/app.css -> css/app.3f2a9c1b7d4e.css), written once to build/static beside its .br and
  .gz (WhiteNoise's compressor); WhiteNoise serves them in front of Flask. A hashed name never
  changes content, so it is cached for a year (`immutable`); the plain name (still asked for by
  pages an older version kept) is served too, revalidated every time. url_for('static', ...)
  gives the hashed URL, so templates need nothing.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import tempfile
from functools import cache
from pathlib import Path

from flask import Flask
from flask_compress import Compress
from markupsafe import Markup
from whitenoise import WhiteNoise
from whitenoise.compress import Compressor

from fieldapp.settings import ROOT

STATIC = ROOT / "static"
BUILD = ROOT / "build" / "static"
IMMUTABLE = "public, max-age=31536000, immutable"
# A hashed name: the content's hash before the last suffix, 12 hex digits.
HASHED = re.compile(r"\.[0-9a-f]{12}(\.[^./]+)?$")

# The gate page's styles, carried in the page itself (templates/gate/page.html): on one bar a
# stylesheet is a round trip of its own before the form can be painted. The CSP allows exactly
# this text by its hash (fieldapp/security.py); the files stay for the other pages.
INLINE_STYLES = ("css/app.css", "css/gate.css", "css/pwa.css")

COMPRESSED_TYPES = [
    "text/html",
    "text/css",
    "text/plain",
    "text/csv",
    "text/javascript",
    "application/javascript",
    "application/json",
    "application/manifest+json",
    "image/svg+xml",
]


def hashed_name(rel: str, data: bytes) -> str:
    """css/app.css -> css/app.<first 12 hex digits of its sha256>.css."""
    digest = hashlib.sha256(data).hexdigest()[:12]
    stem, dot, suffix = rel.rpartition(".")
    if not dot or "/" in suffix:
        return f"{rel}.{digest}"
    return f"{stem}.{digest}.{suffix}"


def _write(path: Path, data: bytes) -> None:
    """Write through a temporary file, so another process never reads half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def _compressed(rel: str, data: bytes) -> dict[str, bytes]:
    """{".br": ..., ".gz": ...} where compressing pays (WhiteNoise's rules: not for images,
    archives or fonts, and only when at least 5 % smaller)."""
    compressor = Compressor(quiet=True)
    if not compressor.should_compress(rel):
        return {}
    found = {}
    for suffix, packed in ((".br", compressor.compress_brotli), (".gz", compressor.compress_gzip)):
        body = packed(data)
        if compressor.is_compressed_effectively(suffix, rel, len(data), body):
            found[suffix] = body
    return found


def build(source: Path = STATIC, out: Path = BUILD) -> dict[str, str]:
    """Copy every static file to `out` under its hashed name and its plain one, each with a .br
    and a .gz where compressing pays; return {plain name: hashed name}. A hashed file already
    there holds the same bytes, so a restart compresses only what changed. Files of earlier
    versions stay, so a page an older version kept still finds its own."""
    manifest = {}
    for path in sorted(source.rglob("*")):
        rel = path.relative_to(source).as_posix()
        if not path.is_file() or any(part.startswith(".") for part in rel.split("/")):
            continue
        data = path.read_bytes()
        hashed = manifest[rel] = hashed_name(rel, data)
        plain = out / rel
        if (out / hashed).exists() and plain.exists() and plain.read_bytes() == data:
            continue
        variants = _compressed(rel, data)
        # The variants first: a file that exists has its variants beside it.
        for name in (hashed, rel):
            for suffix in (".br", ".gz"):
                if suffix in variants:
                    _write(out / (name + suffix), variants[suffix])
                elif (out / (name + suffix)).exists():
                    (out / (name + suffix)).unlink()  # no longer pays: never serve a stale one
            _write(out / name, data)
    return manifest


@cache
def inline_styles() -> str:
    """The text of the gate page's <style> element."""
    return "\n".join((STATIC / name).read_text(encoding="utf-8") for name in INLINE_STYLES)


def inline_styles_hash() -> str:
    """The CSP source that allows the gate page's <style> element."""
    digest = hashlib.sha256(inline_styles().encode("utf-8")).digest()
    return f"'sha256-{base64.b64encode(digest).decode()}'"


# Every answer of the instance carries this header, its static files too: the service worker
# tells them from a captive portal's page answering in their place (static/sw.js, fromUs).
INSTANCE_MARK = ("X-Fieldapp", "1")


def _headers(headers, path: str, url: str) -> None:
    headers["Cache-Control"] = IMMUTABLE if HASHED.search(url) else "no-cache"
    headers["X-Content-Type-Options"] = "nosniff"
    headers[INSTANCE_MARK[0]] = INSTANCE_MARK[1]


def init_app(app: Flask) -> None:
    """Compress the app's answers; serve static files hashed and precompressed in front of it,
    and make url_for('static', filename=...) give the hashed URL."""
    app.config.setdefault("COMPRESS_ALGORITHM", ["br", "gzip"])
    app.config.setdefault("COMPRESS_ALGORITHM_STREAMING", ["br", "gzip"])
    app.config.setdefault("COMPRESS_MIMETYPES", COMPRESSED_TYPES)
    # Brotli 5: a gate page 10 % smaller than the library's 4, in under a millisecond.
    app.config.setdefault("COMPRESS_BR_LEVEL", 5)
    Compress(app)

    try:
        out = BUILD
        manifest = build(STATIC, out)
    except OSError:  # a checkout we may not write to: a folder of this process's own
        out = Path(tempfile.mkdtemp(prefix="fieldapp-static-"))
        manifest = build(STATIC, out)

    static = WhiteNoise(app.wsgi_app, allow_all_origins=False, add_headers_function=_headers)
    static.add_files(str(out), prefix=app.static_url_path)
    app.wsgi_app = static

    app.jinja_env.globals["inline_styles"] = lambda: Markup(inline_styles())

    @app.url_defaults
    def _hashed(endpoint: str, values: dict) -> None:
        if endpoint == "static" and values.get("filename") in manifest:
            values["filename"] = manifest[values["filename"]]
