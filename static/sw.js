/* fieldapp's service worker: the app shell offline, and the outbox for gate entries.
 *
 * Served at /sw.js (root scope) by fieldapp/phones/views.py, which fills in the version and the
 * shell's URLs (static files by their hashed names, and the importScripts below too). A new
 * version replaces the shell cache only; the outbox (IndexedDB) is never touched here except
 * through outbox.js.
 */
"use strict";

importScripts("/static/js/outbox.js", "/static/js/rules.js");

const VERSION = "__VERSION__";
const SHELL = "fieldapp-shell-" + VERSION;
const SHELL_URLS = "__SHELL__";
// Kept in the shell cache on first use rather than at install (the jsQR fallback, console styles).
const LAZY_URLS = "__LAZY__";
// Gate pages this phone has opened: kept across versions, refreshed whenever online.
const PAGES = "fieldapp-pages";
// A save waits this long for the instance before its record goes to the outbox.
const SUBMIT_TIMEOUT_MS = FieldOutbox.SUBMIT_TIMEOUT_MS;
const PAGE_TIMEOUT_MS = 4000;
const GATE_PAGE = /^\/s\/[^/]+\/?$/;
// Marks a kept page made before the volunteer chose another language.
const STALE = "X-Fieldapp-Stale";
// Marks a gate page kept under a site's old code: the site's page under its new code, kept
// under both (the old address is in the browser's tab and history), with where it moved.
const MOVED = "X-Fieldapp-Moved";
const GATE_POST = /^\/s\/[^/]+\/entries\/?$/;
// A site's screening list and form: kept like the gate page (its answers go to the outbox).
const SCREENING_PAGE = /^\/s\/[^/]+\/screening\/[^/]+\/?$/;
const CHECKBOXES = ["travel", "self_registered"];
const SYNC_TAG = "fieldapp-outbox";
// A static file's name with its content's hash (css/app.3f2a9c1b7d4e.css), and without it.
const HASHED = /\.[0-9a-f]{12}(\.[^./]+)?$/;
const plainName = (path) => path.replace(HASHED, "$1");
// This version's file for each plain name: a page kept by an older version asks for its own
// hashed names (or plain ones), which this version answers with its file of that name.
const CURRENT = new Map([...SHELL_URLS, ...LAZY_URLS].map((u) => [plainName(u), u]));

/* Whether an answer is the instance's (fieldapp/assets.py, INSTANCE_MARK), not a captive
 * portal's page answering in its place at a station's or a hotel's Wi-Fi. */
const fromUs = (res) => res.headers.get("X-Fieldapp") === "1";

/* The shell's files this phone does not have yet; resolves with how many are still missing.
 * One missing file must not leave the phone without the rest: at install on one bar of signal
 * some may fail, so every page asks again (pwa.js) until all are here. A hashed file never
 * changes, so the copy the page just downloaded (HTTP cache) will do. */
async function fillShell(installing) {
  // An older version still running for some page: a newer one's activation deleted its shell.
  if (!installing && !(await caches.has(SHELL))) return 0;
  const cache = await caches.open(SHELL);
  let missing = 0;
  await Promise.all(SHELL_URLS.map(async (url) => {
    if (await cache.match(url)) return;
    try {
      const res = await fetch(url, { cache: HASHED.test(url) ? "default" : "no-cache", credentials: "same-origin" });
      // Not a captive portal's page (redirected, or answering in the file's place): it would
      // be kept for good.
      if (res.ok && !res.redirected && fromUs(res)) {
        await cache.put(url, res);
        return;
      }
    } catch (_) { /* the next page asks again */ }
    missing += 1;
  }));
  return missing;
}

self.addEventListener("install", (event) => {
  event.waitUntil((async () => {
    const missing = await fillShell(true);
    // An update: activated, it deletes the older version's shell, which this phone opens
    // offline. With part of this one's missing (one bar of signal), the phone would be left
    // with neither: the install fails instead, the older version goes on, and the browser
    // tries this one again at a later visit (what came is kept for that try).
    const older = (await caches.keys()).some((n) => n.startsWith("fieldapp-shell-") && n !== SHELL);
    if (missing && older) throw new Error(missing + " files of the app shell did not come");
    await self.skipWaiting();
  })());
});

self.addEventListener("activate", (event) => {
  event.waitUntil((async () => {
    for (const name of await caches.keys()) {
      if (name.startsWith("fieldapp-shell-") && name !== SHELL) await caches.delete(name);
    }
    await self.clients.claim();
    await FieldOutbox.open(); // migrates an outbox written by an older version, drops nothing
  })());
});

self.addEventListener("message", (event) => {
  const msg = event.data || {};
  if (msg.type === "claim") {
    // A page that was still loading when the worker activated was missed by claim() there.
    event.waitUntil(self.clients.claim());
  } else if (msg.type === "fill-shell") {
    event.waitUntil(fillShell(false));
  } else if (msg.type === "cache-page" && typeof msg.url === "string") {
    event.waitUntil(cachePage(msg.url));
  } else if (msg.type === "follow" && typeof msg.from === "string" && GATE_PAGE.test(msg.from)) {
    // A gate page learnt that its site's code changed (last.js): keep where it leads.
    event.waitUntil(caches.open(PAGES).then((cache) => keepMoved(cache, msg.from)).catch(() => null));
  } else if (msg.type === "send") {
    event.waitUntil(FieldOutbox.send({ force: !!msg.force }).catch(() => null));
  }
});

self.addEventListener("sync", (event) => {
  if (event.tag !== SYNC_TAG) return;
  event.waitUntil(FieldOutbox.send({ force: true }).then((r) => {
    // Rejecting asks the browser to try again later; an unenrolled phone waits for the volunteer.
    if (!r.ok && r.reason !== "enrol") throw new Error(r.reason);
  }));
});

self.addEventListener("fetch", (event) => {
  const req = event.request;
  const url = new URL(req.url);
  if (url.origin !== self.location.origin) return;
  if (req.method === "POST") {
    if (req.headers.get("X-Outbox-Kind") || GATE_POST.test(url.pathname)) {
      event.respondWith(submit(event));
    }
    return;
  }
  if (req.method !== "GET") return;
  if (url.pathname === "/ping" || url.pathname.startsWith("/sync/") || url.pathname.startsWith("/pwa/")) return;
  if (req.mode === "navigate" && (url.pathname === "/start" || url.pathname === "/")) {
    event.respondWith(startPage(req));
  } else if (req.mode === "navigate" && url.pathname.startsWith("/lang/")) {
    event.respondWith(chooseLanguage(event, url));
  } else if (req.mode === "navigate" && GATE_PAGE.test(url.pathname)) {
    event.respondWith(gatePage(event, url));
  } else if (req.mode === "navigate" && SCREENING_PAGE.test(url.pathname)) {
    event.respondWith(screeningPage(event, url));
  } else if (CURRENT.has(plainName(url.pathname)) && !req.headers.get("HX-Request")) {
    event.respondWith(shellFirst(req, url));
  } else if (req.mode === "navigate") {
    event.respondWith(pageOrOutbox(req, url));
  }
});

function timeout(promise, ms) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("timeout")), ms);
    promise.then((v) => { clearTimeout(timer); resolve(v); }, (e) => { clearTimeout(timer); reject(e); });
  });
}

/* Keep a gate page, or a campaign's screening page, that a page asks for (pwa.js): one this
 * worker did not answer itself, or that the page only links to. */
async function cachePage(path) {
  const url = new URL(path, self.location.origin);
  const page = GATE_PAGE.test(url.pathname) ? "gate" : SCREENING_PAGE.test(url.pathname) ? "screening" : "";
  if (!page || url.origin !== self.location.origin) return;
  try {
    const res = await fetch(url.pathname, { credentials: "same-origin", cache: "no-cache" });
    if (res.ok && !res.redirected && res.headers.get("X-Fieldapp-Page") === page) {
      await (await caches.open(PAGES)).put(url.pathname, res);
      if (page === "gate") await FieldOutbox.setMeta("last_gate", url.pathname);
    }
  } catch (_) { /* offline: it is cached next time */ }
}

/* A gate page: the copy this phone kept, at once, refreshed in the background for next time
 * (at a gate the network is slow far more often than absent; the page's last entries follow by
 * htmx). The first visit, with nothing kept, waits for the network, and without one goes to the
 * scanner, which says so; a page kept in the language before the volunteer chose another waits
 * for a few seconds. */
async function gatePage(event, url) {
  const cache = await caches.open(PAGES);
  const kept = await cache.match(url.pathname, { ignoreVary: true });
  const moved = kept && kept.headers.get(MOVED);
  if (moved && (await cache.match(moved, { ignoreVary: true }))) {
    // The site's code changed since this address was kept: its page under the new code.
    return Response.redirect(moved + url.search, 302);
  }
  if (url.search && url.searchParams.get("saved") !== "outbox") {
    // A roster search (or a person picked) that the phone's own roster could not answer, or
    // the page after a save sent without the page's script (saved=1, its confirmation in it:
    // a flash the instance gives once): the instance's answer, not the kept page; and never
    // kept, or the next visit would open on this search or confirmation. Without a network,
    // or on one too slow, the kept page. (saved=outbox: kept here, which the kept page says.)
    try {
      return await (kept ? timeout(fetch(event.request), PAGE_TIMEOUT_MS) : fetch(event.request));
    } catch (err) {
      if (kept) return kept;
      throw err;
    }
  }
  const network = fetch(event.request).then(async (res) => {
    // Only the volunteer's page is kept: a 5xx, or the visitor's form where this phone had the
    // volunteer's page (enrolment revoked), never replaces it; the kept page's status line says
    // what to do and still shows the queue.
    if (res.ok && !url.search && res.headers.get("X-Fieldapp-Page") === "gate") {
      await cache.put(url.pathname, res.clone());
      await FieldOutbox.setMeta("last_gate", url.pathname).catch(() => null);
    } else if (res.type === "opaqueredirect" && kept) {
      // This phone's site has a new code (the instance sends its phones there): keep that page.
      await keepMoved(cache, url.pathname).catch(() => null);
    } else if (res.status === 404 && kept) {
      // No such gate any more for this phone (the site closed, or an old code of another
      // site's): the next visit shows the instance's page saying so, not a form for it.
      await cache.delete(url.pathname);
    }
    return res;
  });
  if (!kept) {
    const missing = new URLSearchParams({ missing: url.pathname.split("/")[2] });
    return network.catch(() => Response.redirect("/scan?" + missing, 302));
  }
  event.waitUntil(network.catch(() => null));
  FieldOutbox.setMeta("last_gate", url.pathname).catch(() => null);
  if (!kept.headers.has(STALE)) return kept;
  try {
    const res = await timeout(network, PAGE_TIMEOUT_MS);
    const gate = res.ok && res.headers.get("X-Fieldapp-Page") === "gate";
    return gate || res.type === "opaqueredirect" ? res : kept;
  } catch (_) {
    return kept;
  }
}

/* The page a gate address now leads to (its site's new code), kept under that address and,
 * marked as moved there, under this one: offline the old address, the browser's tab or
 * history, still opens the form, and records saved there name the site, not the code. */
async function keepMoved(cache, path) {
  const res = await fetch(path, { credentials: "same-origin", cache: "no-cache" });
  const to = new URL(res.url);
  if (!res.ok || !res.redirected || to.origin !== self.location.origin || to.pathname === path
      || !GATE_PAGE.test(to.pathname) || res.headers.get("X-Fieldapp-Page") !== "gate") return;
  // Made anew: a response that was redirected is refused as the answer to a navigation.
  const body = await res.arrayBuffer();
  const marked = new Headers(res.headers);
  marked.set(MOVED, to.pathname);
  await cache.put(to.pathname, new Response(body, { status: res.status, headers: res.headers }));
  await cache.put(path, new Response(body, { status: res.status, headers: marked }));
  await FieldOutbox.setMeta("last_gate", to.pathname);
}

/* Another language chosen: the pages kept are in the one before, so each asks the network
 * first next time (and is kept anew); offline, or while it is slow, they still answer. The
 * shell's own pages (the outbox, the scanner) are fetched again in the new language now: the
 * shell answers them first, always, so they would stay in the language of the install. With
 * no network the choice cannot be made: back to the page it was made on. */
async function chooseLanguage(event, url) {
  let res;
  try {
    res = await fetch(event.request);
  } catch (_) {
    // The page it was chosen on, if next= is one of this instance's (as the server's
    // i18n.local_path allows: a browser reads "/\\host" as another site).
    let back = "/start";
    try {
      const next = new URL(url.searchParams.get("next") || back, self.location.origin);
      if (next.origin === self.location.origin) back = next.pathname + next.search;
    } catch (_) { /* not an address at all */ }
    return Response.redirect(back, 302);
  }
  const cache = await caches.open(PAGES);
  for (const key of await cache.keys()) {
    const kept = await cache.match(key, { ignoreVary: true });
    const headers = new Headers(kept.headers);
    headers.set(STALE, "language");
    await cache.put(key, new Response(await kept.blob(), { status: kept.status, headers }));
  }
  // The page chosen on may be one of them (next=/outbox): waited for, a few seconds at most.
  const shellPages = refreshShellPages();
  event.waitUntil(shellPages);
  await timeout(shellPages, PAGE_TIMEOUT_MS).catch(() => null);
  return res;
}

/* The shell's pages (not its static files) anew from the network, in the language the cookie
 * now says; one that does not come, or is not the instance's answer, stays as it was. */
async function refreshShellPages() {
  if (!(await caches.has(SHELL))) return; // a newer version's activation deleted this shell
  const cache = await caches.open(SHELL);
  await Promise.all(SHELL_URLS.filter((u) => !u.startsWith("/static/")).map(async (url) => {
    try {
      const res = await fetch(url, { cache: "no-cache", credentials: "same-origin" });
      if (res.ok && !res.redirected && fromUs(res)) await cache.put(url, res);
    } catch (_) { /* offline again: the copy kept before still answers */ }
  }));
}

/* The installed app's start (and the home page): the server's; offline, the last gate page used. */
async function startPage(req) {
  try {
    return await timeout(fetch(req), PAGE_TIMEOUT_MS);
  } catch (_) {
    const last = await FieldOutbox.getMeta("last_gate").catch(() => null);
    return Response.redirect(last || "/outbox", 302);
  }
}

/* Any other page (the daily report, a campaign list, the console): the network's. Without one,
 * the outbox page, which the shell keeps, says this page needs the network and shows what waits
 * on the phone, rather than the browser's error page. */
async function pageOrOutbox(req, url) {
  try {
    return await fetch(req);
  } catch (err) {
    return Response.redirect("/outbox?" + new URLSearchParams({ offline: url.pathname + url.search }), 302);
  }
}

/* A static file from the shell cache; first used, from the network into the cache. Asked for
 * by another name (hashed by an older version, or plain), this version's file of that name. */
async function shellFirst(req, url) {
  const current = CURRENT.get(plainName(url.pathname));
  const kept = await caches.match(current, { cacheName: SHELL, ignoreVary: true, ignoreSearch: true });
  if (kept) return kept;
  const res = await fetch(current === url.pathname ? req : current);
  // Only into a shell that is still there: a newer version's activation deletes this one's,
  // and caches.open would make it again (an old shell left beside the new one for good). Not
  // a captive portal's page either, as fillShell.
  const ours = res.ok && !res.redirected && fromUs(res);
  if (ours && (await caches.has(SHELL))) (await caches.open(SHELL)).put(current, res.clone());
  return res;
}

/* A gate entry: to the instance if it answers within a few seconds, else into the outbox. */
async function submit(event) {
  const req = event.request;
  let form;
  try {
    form = await req.clone().formData();
  } catch (_) {
    return fetch(req);
  }
  try {
    const res = await timeout(fetch(req), SUBMIT_TIMEOUT_MS);
    if (res.status === 401) {
      // Enrolment revoked: keep the entry; the status line asks for a new enrolment link.
      await FieldOutbox.setMeta("needs_enrol", true);
    } else if (res.type === "opaqueredirect" || (res.status < 500 && fromUs(res))) {
      // The instance's answer; or a form sent without the page's script, whose redirect
      // (the instance's "saved", 303) the worker cannot read: the browser follows it.
      return res;
    }
    // Else no answer of the instance's (a captive portal's login page at a station's or a
    // hotel's Wi-Fi, answering in its place): the save did not reach it.
  } catch (_) { /* offline, timed out, or the connection broke: keep it on the phone */ }

  const kind = req.headers.get("X-Outbox-Kind") || "entry";
  // The page checks the rules before it sends; this catches a page that could not (its
  // script failed): nothing is kept that the instance would refuse.
  const checked = await checkRules(req.url, form);
  if (checked && Object.keys(checked.errors).length) return invalid(req, checked.errors);
  // Its free text kept as the instance stores it (the invisible marks nobody typed removed, the
  // spaces around trimmed): what this phone keeps and shows is what the instance will hold.
  if (checked) FieldRules.cleanText(checked.rules, checked.clean, (name, value) => {
    if (form.has(name)) form.set(name, value);
  });
  const boolHeader = req.headers.get("X-Outbox-Booleans");
  const booleans = boolHeader !== null ? boolHeader.split(",").filter(Boolean) : CHECKBOXES;
  const record = FieldOutbox.fromForm(form, kind, booleans);
  const waiting = await FieldOutbox.add(record); // durable before the volunteer sees "saved"
  if (self.registration.sync) self.registration.sync.register(SYNC_TAG).catch(() => null);

  // enrol: it waits for a new enrolment link, not for the network (the page says which).
  const enrol = !!(await FieldOutbox.getMeta("needs_enrol").catch(() => false));
  if (req.headers.get("HX-Request")) return htmxEvent("outbox-saved", { uuid: record.uuid, waiting, enrol });
  // Without htmx: back to the (cached) gate page, which says it was saved on the phone.
  return Response.redirect(gatePath(req.url) + "?saved=outbox", 303);
}

/* The gate page an entry was posted from. */
function gatePath(postUrl) {
  return new URL(postUrl).pathname.replace(/\/entries\/?$/, "");
}

/* The rules of the gate page an entry was posted from, as that page (kept here) carries them. */
async function rulesOf(postUrl) {
  const kept = await (await caches.open(PAGES)).match(gatePath(postUrl), { ignoreVary: true });
  if (!kept) return null;
  // The page's form carries them as JSON in data-rules='…' (Jinja's tojson escapes every ').
  const m = /<form id="entry-form"[^>]*\sdata-rules='([^']*)'/.exec(await kept.text());
  try {
    return m ? JSON.parse(m[1]) : null;
  } catch (_) {
    return null;
  }
}

/* A posted entry checked by its page's rules: {rules, clean, errors} (errors by field, none if
 * it keeps every rule), or null when no rules are known. */
async function checkRules(postUrl, form) {
  if (!GATE_POST.test(new URL(postUrl).pathname)) return null;
  const rules = await rulesOf(postUrl);
  if (!rules) return null;
  const data = {};
  for (const [k, v] of form.entries()) if (typeof v === "string") data[k] = v;
  const { clean, errors } = FieldRules.check(rules, data);
  return { rules, clean, errors };
}

/* An answer for htmx that swaps nothing and fires an event on the page. The event's JSON has
 * non-ASCII as \u escapes: a header value must be Latin-1, and htmx JSON-parses it back. */
function htmxEvent(name, detail) {
  const trigger = JSON.stringify({ [name]: detail }).replace(/[\u007f-\uffff]/g,
    (c) => "\\u" + c.charCodeAt(0).toString(16).padStart(4, "0"));
  return new Response("", {
    status: 200,
    headers: { "Content-Type": "text/html; charset=utf-8", "HX-Reswap": "none", "HX-Trigger": trigger },
  });
}

function invalid(req, errors) {
  if (req.headers.get("HX-Request")) return htmxEvent("outbox-invalid", { errors });
  const items = Object.values(errors).map((m) => "<li>" + m.replace(/[<&]/g, "") + "</li>").join("");
  const back = gatePath(req.url);
  return new Response(
    "<!doctype html><meta charset=utf-8><meta name=viewport content='width=device-width'>" +
    "<ul>" + items + "</ul><p><a href='" + back + "'>&larr;</a></p>",
    { status: 400, headers: { "Content-Type": "text/html; charset=utf-8" } });
}

/* A screening page: the network when it answers soon, else the copy this phone kept (the
 * page's script then merges what this phone answered since). Kept per path, whatever the query. */
async function screeningPage(event, url) {
  const cache = await caches.open(PAGES);
  const network = fetch(event.request).then(async (res) => {
    if (res.ok && res.headers.get("X-Fieldapp-Page") === "screening") {
      await cache.put(url.pathname, res.clone());
    }
    return res;
  });
  event.waitUntil(network.catch(() => null));
  const kept = await cache.match(url.pathname, { ignoreVary: true });
  try {
    const res = await (kept ? timeout(network, PAGE_TIMEOUT_MS) : network);
    if (kept && (res.status >= 500 || (res.ok && res.headers.get("X-Fieldapp-Page") !== "screening"))) {
      return kept;
    }
    return res;
  } catch (err) {
    if (kept) return kept;
    throw err;
  }
}
