# Two commands do all the set-up on a fresh machine: `make run` and `make test`.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check -q
FIELDAPP := $(VENV)/bin/fieldapp
HOST ?= 127.0.0.1
PORT ?= 5000
VENDOR := static/vendor

.PHONY: run test install test-deps vendor catalogs pdffont chromium webkit postgresql lint clean

# The address the printed links and QR codes carry: BASE_URL when given; this server's own when
# HOST or PORT are given, on the command line or in the environment (`PORT=8000 make run`
# printed links to port 5000; 0.0.0.0: the machine's first network address); else what
# instance/config.py or FIELDAPP_BASE_URL says.
GIVEN := command line environment
ifneq ($(filter $(GIVEN),$(origin BASE_URL)),)
RUN_ENV := FIELDAPP_BASE_URL=$(BASE_URL)
else ifneq ($(filter $(GIVEN),$(origin HOST) $(origin PORT)),)
URL_HOST := $(if $(filter 0.0.0.0,$(HOST)),$(or $(firstword $(shell hostname -I 2>/dev/null)),127.0.0.1),$(HOST))
RUN_ENV := FIELDAPP_BASE_URL=http://$(URL_HOST):$(PORT)
endif

run: install
	$(RUN_ENV) $(FIELDAPP) init
	$(RUN_ENV) $(FIELDAPP) demo
	$(RUN_ENV) $(FIELDAPP) serve --host $(HOST) --port $(PORT)

test: install test-deps chromium webkit postgresql
	$(VENV)/bin/ruff check fieldapp sync tests bench
	# Two workers (the machines have two cores); a module's tests stay together (its fixtures once).
	$(PY) -m pytest -q -n 2 --dist loadscope

install: $(VENV)/.installed vendor catalogs pdffont

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install -e .
	touch $@

test-deps: $(VENV)/.test-installed

$(VENV)/.test-installed: pyproject.toml
	$(PIP) install -e '.[test]'
	touch $@

# Third-party JS comes from the npm registry, pinned in package-lock.json, never committed.
vendor: $(VENDOR)/.copied

$(VENDOR)/.copied: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	mkdir -p $(VENDOR)
	cp node_modules/htmx.org/dist/htmx.min.js $(VENDOR)/htmx.min.js
	cp node_modules/jsqr/dist/jsQR.js $(VENDOR)/jsQR.js
	touch $@

# Each area keeps its own catalog (fieldapp/translations/<area>/<lang>); Flask-Babel merges them.
catalogs: $(VENV)/.installed
	@for d in fieldapp/translations/*/; do $(VENV)/bin/pybabel compile -d "$$d" >/dev/null 2>&1 || { $(VENV)/bin/pybabel compile -d "$$d"; exit 1; }; done

# Debian packages the set-up needs, installed with apt (as root, or through sudo) when missing.
APT_INSTALL = if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(1); \
	  else sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(1); fi

# PDFs with Chinese text (posters) embed WenQuanYi Micro Hei from Debian's fonts-wqy-microhei;
# fieldapp/pdffont.py says why that font. Without apt, `fieldapp posters` says what is missing.
# Rare hanzi it lacks (place names' 㙟, 𡌶) come from Hanazono Mincho, fonts-hanazono; without
# it they print as 〓, and nothing else changes.
PDF_FONT := /usr/share/fonts/truetype/wqy/wqy-microhei.ttc
PDF_RARE_FONT := /usr/share/fonts/truetype/hanazono/HanaMinB.ttf
pdffont:
	@test -f $(PDF_FONT) || { \
	  if ! command -v apt-get >/dev/null; then echo "PDF posters need $(PDF_FONT) (fonts-wqy-microhei): install it by hand" >&2; \
	  else $(call APT_INSTALL,fonts-wqy-microhei); fi; }
	@test -f $(PDF_RARE_FONT) || { \
	  if ! command -v apt-get >/dev/null; then echo "Rare hanzi on PDF posters print as 〓 without $(PDF_RARE_FONT) (fonts-hanazono): install it by hand" >&2; \
	  else $(call APT_INSTALL,fonts-hanazono); fi; }

# Browser tests drive Debian's Chromium; playwright cannot download its own here. The poster
# tests print pages with poppler's pdftoppm/pdftotext.

chromium:
	@{ command -v chromium && command -v pdftoppm; } >/dev/null || { $(call APT_INSTALL,chromium poppler-utils); }

# The WebKit test (the engine of every iPhone browser) drives Debian's WebKitGTK through its
# WebDriver (Selenium), in a virtual X server.
webkit:
	@{ command -v WebKitWebDriver && command -v Xvfb; } >/dev/null || { $(call APT_INSTALL,webkit2gtk-driver xvfb); }

# The PostgreSQL tests start a throwaway cluster of their own (tests/pg_cluster.py) with Debian's
# initdb and pg_ctl from /usr/lib/postgresql/<version>/bin (not on PATH there).
postgresql:
	@{ compgen -G '/usr/lib/postgresql/*/bin/pg_ctl' || command -v pg_ctl; } >/dev/null || { $(call APT_INSTALL,postgresql); }

lint: test-deps
	$(VENV)/bin/ruff check fieldapp sync tests bench
	$(VENV)/bin/ruff format --check fieldapp sync tests bench

clean:
	rm -rf $(VENV) node_modules $(VENDOR) instance build/static
