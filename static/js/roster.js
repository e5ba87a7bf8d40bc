/* The site's roster on this phone: the people a scanned pass or a search fills the form with,
 * offline as online.
 *
 * The gate page names the roster's version (data-roster-version on the search form); when the
 * phone's copy is another version it fetches /s/<code>/roster.json (enrolled phones of this
 * site only) and keeps it in IndexedDB ("fieldapp-roster", apart from the outbox). It holds
 * what the form needs and no more: id, name, unit, person type, pass token, and the phone
 * number only where the site's form asks for it. A phone that is no longer enrolled is told
 * so by the instance (401/403) and forgets the roster. A page kept under an old code of the
 * site asks there: the instance redirects this site's phone to the current code's roster.json
 * (fetch follows it; the copy is kept by site id, as ever); a 404 (the site closed, or another
 * site's phone) leaves the copy kept here as it is.
 *
 * With the roster here, the search is answered on the phone, as the instance would answer it
 * (name, phone or unit containing 2 characters or more, by name, 8 at most), in the same
 * markup (templates/gate/_roster.html), without waiting for the network.
 */
(function (global) {
  "use strict";

  const DB_NAME = "fieldapp-roster";
  const STORE = "rosters";
  const LIMIT = 8;
  const FETCH_TIMEOUT_MS = 15000;

  let dbPromise = null;
  let current = null; // {site_id, version, people: [{id, name, unit, person_type, pass, phone}]}
  let byToken = new Map();

  function open() {
    if (!dbPromise) {
      dbPromise = new Promise((resolve, reject) => {
        const req = indexedDB.open(DB_NAME, 1);
        req.onupgradeneeded = () => req.result.createObjectStore(STORE, { keyPath: "site_id" });
        req.onsuccess = () => resolve(req.result);
        req.onerror = () => {
          dbPromise = null;
          reject(req.error);
        };
      });
    }
    return dbPromise;
  }

  async function run(mode, fn) {
    const db = await open();
    return new Promise((resolve, reject) => {
      const tx = db.transaction(STORE, mode);
      const r = fn(tx.objectStore(STORE));
      tx.oncomplete = () => resolve(r && r.result);
      tx.onerror = () => reject(tx.error);
      tx.onabort = () => reject(tx.error);
    });
  }

  function use(record) {
    current = record || null;
    byToken = new Map();
    if (!current) return;
    for (const p of current.people) if (p.pass) byToken.set(p.pass, p);
  }

  /* The answer of roster.json as kept here: one object a person. */
  function fromAnswer(siteId, body) {
    const fields = body.fields || [];
    const people = (body.people || []).map((row) => {
      const p = {};
      fields.forEach((name, i) => { p[name] = row[i] === undefined ? "" : row[i]; });
      return p;
    });
    return { site_id: siteId, version: body.version, people, fetched_at: Date.now() };
  }

  function searchForm() { return document.querySelector("form.roster-search[data-roster-url]"); }

  /* Load this site's roster from IndexedDB, then bring it up to the page's version. */
  async function load() {
    const form = searchForm();
    if (!form) return;
    const siteId = form.dataset.siteId;
    try {
      use(await run("readonly", (s) => s.get(siteId)));
    } catch (_) {
      return; // no IndexedDB (private mode): the instance answers the search
    }
    if (current && current.version === form.dataset.rosterVersion) return;
    await refresh(form);
  }

  async function refresh(form) {
    const siteId = form.dataset.siteId;
    const url = form.dataset.rosterUrl + (current ? "?have=" + encodeURIComponent(current.version) : "");
    let res;
    try {
      const ctl = new AbortController();
      const timer = setTimeout(() => ctl.abort(), FETCH_TIMEOUT_MS);
      res = await fetch(url, { credentials: "same-origin", cache: "no-store", signal: ctl.signal });
      clearTimeout(timer);
    } catch (_) {
      return; // offline: the copy kept here serves until the next time
    }
    if (res.status === 401 || res.status === 403) {
      await run("readwrite", (s) => s.delete(siteId)).catch(() => null);
      use(null);
      return;
    }
    if (res.status === 204 || !res.ok) return;
    try {
      const record = fromAnswer(siteId, await res.json());
      await run("readwrite", (s) => s.put(record));
      use(record);
    } catch (_) { /* cut short: keep what we had */ }
  }

  // SQLite's lower(): ASCII letters only, as the instance's search compares.
  function lower(text) { return String(text || "").replace(/[A-Z]/g, (c) => c.toLowerCase()); }

  /* Active people whose name, phone or unit contains the query, as the instance searches. */
  function search(query) {
    const q = lower(String(query || "").trim());
    if (!current || [...q].length < 2) return [];
    const out = [];
    for (const p of current.people) {
      if (lower(p.name).includes(q) || (p.phone || "").includes(q) || lower(p.unit).includes(q)) {
        out.push(p);
        if (out.length >= LIMIT) break;
      }
    }
    return out;
  }

  function maskPhone(phone) {
    return phone && phone.length === 11 ? phone.slice(0, 3) + "****" + phone.slice(7) : phone || "";
  }

  /* The matches in the markup of templates/gate/_roster.html (gate.js picks from it). */
  function render(query) {
    const list = document.getElementById("roster-results");
    const form = searchForm();
    if (!list || !form) return;
    const q = String(query || "").trim();
    list.replaceChildren();
    const matches = search(q);
    for (const p of matches) {
      const li = document.createElement("li");
      const a = document.createElement("a");
      a.className = "person";
      a.href = form.getAttribute("action") + "?person=" + encodeURIComponent(p.id);
      a.dataset.id = p.id;
      a.dataset.name = p.name;
      a.dataset.phone = p.phone || "";
      a.dataset.unit = p.unit;
      a.dataset.personType = p.person_type;
      const name = document.createElement("strong");
      name.textContent = p.name;
      const unit = document.createElement("span");
      unit.textContent = p.unit;
      a.append(name, " ", unit);
      if (p.phone) {
        const phone = document.createElement("span");
        phone.className = "muted";
        phone.textContent = maskPhone(p.phone);
        a.append(" ", phone);
      }
      li.append(a);
      list.append(li);
    }
    if (!matches.length && [...q].length >= 2) {
      const li = document.createElement("li");
      li.className = "muted";
      li.textContent = (list.dataset.tNone || "").replace("{q}", q);
      list.append(li);
    }
  }

  function ready() { return !!current; }

  /* Without the roster here yet (the first visit, before roster.json came; no IndexedDB):
   * the instance answers, 250 ms after the typing stops, in the same markup. */
  let asking = null;
  function ask(input) {
    clearTimeout(asking);
    asking = setTimeout(async () => {
      const q = input.value;
      try {
        const res = await fetch(input.dataset.searchUrl + "?q=" + encodeURIComponent(q), {
          credentials: "same-origin", headers: { "HX-Request": "true" },
        });
        const t = document.createElement("template");
        t.innerHTML = res.ok ? await res.text() : "";
        const list = t.content.getElementById("roster-results");
        const old = document.getElementById("roster-results");
        // The roster may have come meanwhile, and answered already.
        if (list && old && !ready() && input.value === q) old.replaceWith(list);
      } catch (_) { /* offline and no roster: the search button asks again */ }
    }, 250);
  }

  // With the roster here, the phone answers the search itself: at once, and offline too.
  document.addEventListener("input", (event) => {
    if (event.target.id !== "roster-q") return;
    if (ready()) render(event.target.value);
    else if (event.target.dataset.searchUrl) ask(event.target);
  });
  document.addEventListener("submit", (event) => {
    if (event.target.matches && event.target.matches("form.roster-search") && ready()) {
      event.preventDefault();
      const input = document.getElementById("roster-q");
      render(input ? input.value : "");
    }
  });

  // A fresh form from the instance names the roster's version of now: follow it.
  document.addEventListener("gate-swapped", () => {
    const form = searchForm();
    if (form && (!current || current.version !== form.dataset.rosterVersion)) refresh(form).catch(() => null);
  });

  // The page may be the copy the service worker kept, naming the roster's version of then: ask
  // the instance too (a card reissued since stops working at this visit, not the next one).
  if (document.body) {
    document.body.addEventListener("fieldapp:kept", () => {
      loaded.then(() => { const f = searchForm(); return f ? refresh(f) : null; }).catch(() => null);
    });
  }

  // Typed before the roster was here (this file comes after the form is usable): answer it.
  function answerTyped() {
    const input = document.getElementById("roster-q");
    if (input && ready() && [...input.value.trim()].length >= 2) render(input.value);
  }

  const loaded = new Promise((resolve) => {
    const go = () => load().catch(() => null).then(answerTyped).then(resolve);
    if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", go);
    else go();
  });

  global.FieldRoster = {
    loaded,
    ready,
    search,
    /* The person a pass's token names, or null (reissued, another site's, or not a pass). */
    byPass: (token) => byToken.get(token) || null,
    refresh: () => { const f = searchForm(); return f ? refresh(f) : Promise.resolve(); },
    maskPhone,
  };
})(self);
