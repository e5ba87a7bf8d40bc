/* The outbox: entries waiting on this phone, in IndexedDB, keyed by their uuid.
 *
 * Loaded by the pages and by the service worker (importScripts), so both store and send the
 * same way. A record leaves the outbox only when the instance acknowledges its uuid; what the
 * instance refuses moves to "attention" with the reason. The stored value is plain data, never
 * a Request (no stale cookies or CSRF tokens are replayed).
 */
(function (global) {
  "use strict";

  const DB_NAME = "fieldapp-outbox";
  // v1 kept {uuid, kind, form, saved_at} in "queue"; v2 keeps wire records in "outbox".
  const DB_VERSION = 2;
  const PUSH_URL = "/sync/v1/push";
  const DEVICE_URL = "/pwa/device";
  const BATCH = 250;
  const MAX_BATCH_BYTES = 900000;
  const PUSH_TIMEOUT_MS = 20000;
  const MIN_DELAY_MS = 1000;
  const MAX_DELAY_MS = 5 * 60 * 1000;
  const ACKED = new Set(["applied", "duplicate", "expired"]);
  const REFUSED = new Set(["rejected", "conflict"]);
  const CHANNEL = "fieldapp-outbox";
  // Form fields that are not part of the record's data.
  const ENVELOPE = new Set(["uuid", "recorded_at", "csrf_token"]);

  let dbPromise = null;

  function upgrade(db, tx, oldVersion) {
    if (oldVersion < 2) {
      const outbox = db.createObjectStore("outbox", { keyPath: "uuid" });
      outbox.createIndex("queued_at", "queued_at");
      db.createObjectStore("attention", { keyPath: "uuid" });
      db.createObjectStore("meta");
    }
    if (oldVersion === 1) {
      // An outbox written by the first version: move every record over, drop nothing.
      const outbox = tx.objectStore("outbox");
      tx.objectStore("queue").openCursor().onsuccess = (ev) => {
        const cursor = ev.target.result;
        if (!cursor) {
          db.deleteObjectStore("queue");
          return;
        }
        const old = cursor.value;
        outbox.put(fromFields(old.form || {}, old.kind || "entry", [], old.uuid, old.saved_at));
        cursor.continue();
      };
    }
  }

  function open() {
    if (!dbPromise) {
      dbPromise = new Promise((resolve, reject) => {
        const req = indexedDB.open(DB_NAME, DB_VERSION);
        req.onupgradeneeded = (ev) => upgrade(req.result, req.transaction, ev.oldVersion);
        req.onsuccess = () => {
          const db = req.result;
          db.onversionchange = () => {
            db.close();
            dbPromise = null;
          };
          resolve(db);
        };
        req.onerror = () => {
          dbPromise = null;
          reject(req.error);
        };
      });
    }
    return dbPromise;
  }

  /* Run fn(stores) in one transaction; resolve with its result once durably committed. */
  async function run(names, mode, fn) {
    const db = await open();
    return new Promise((resolve, reject) => {
      const tx = db.transaction(names, mode, { durability: "strict" });
      const stores = {};
      for (const name of [].concat(names)) stores[name] = tx.objectStore(name);
      let result;
      Promise.resolve(fn(stores, tx)).then((r) => (result = r), (e) => {
        try { tx.abort(); } catch (_) { /* already finished */ }
        reject(e);
      });
      tx.oncomplete = () => resolve(result);
      tx.onerror = () => reject(tx.error);
      tx.onabort = () => reject(tx.error || new Error("outbox transaction aborted"));
    });
  }

  function req(r) {
    return new Promise((resolve, reject) => {
      r.onsuccess = () => resolve(r.result);
      r.onerror = () => reject(r.error);
    });
  }

  function value(v) {
    if (v === "true") return true;
    if (v === "false") return false;
    return v;
  }

  /* A wire record from form fields; checkbox fields become true/false. */
  function fromFields(fields, kind, booleans, uuid, queuedAt) {
    const bools = new Set(booleans || []);
    const data = {};
    for (const name of bools) data[name] = false;
    for (const [k, v] of Object.entries(fields)) {
      if (ENVELOPE.has(k)) continue;
      data[k] = bools.has(k) ? !["", "false", "off", "0"].includes(v) : value(v);
    }
    const at = queuedAt || Date.now();
    return {
      uuid: uuid || fields.uuid || global.crypto.randomUUID(),
      kind: kind || "entry",
      recorded_at: fields.recorded_at || new Date(at).toISOString(),
      data,
      queued_at: at,
    };
  }

  /* A wire record from a submitted form's FormData. */
  function fromForm(formData, kind, booleans) {
    const fields = {};
    for (const [k, v] of formData.entries()) if (typeof v === "string") fields[k] = v;
    return fromFields(fields, kind, booleans);
  }

  function broadcast(message) {
    try {
      const ch = new BroadcastChannel(CHANNEL);
      ch.postMessage(message);
      ch.close();
    } catch (_) { /* no BroadcastChannel: pages poll anyway */ }
  }

  /* Store a record durably; resolves with how many wait, after the commit. */
  async function add(record) {
    const waiting = await run(["outbox"], "readwrite", async (s) => {
      s.outbox.put(record);
      return req(s.outbox.count());
    });
    broadcast({ type: "queued", uuid: record.uuid, waiting });
    return waiting;
  }

  async function all(store) {
    return run([store], "readonly", (s) =>
      store === "outbox" ? req(s.outbox.index("queued_at").getAll()) : req(s[store].getAll()));
  }

  async function getMeta(key) {
    return run(["meta"], "readonly", (s) => req(s.meta.get(key)));
  }

  async function setMeta(key, v) {
    return run(["meta"], "readwrite", (s) => { s.meta.put(v, key); });
  }

  /* {waiting, oldest (ms), attention, lastSent, needsEnrol, next} for the status line. */
  async function summary() {
    return run(["outbox", "attention", "meta"], "readonly", async (s) => {
      const [waiting, attention, first, lastSent, needsEnrol, state] = await Promise.all([
        req(s.outbox.count()),
        req(s.attention.count()),
        req(s.outbox.index("queued_at").openCursor()),
        req(s.meta.get("last_sent")),
        req(s.meta.get("needs_enrol")),
        req(s.meta.get("send_state")),
      ]);
      return {
        waiting,
        attention,
        oldest: first ? first.value.queued_at : null,
        lastSent: lastSent || null,
        needsEnrol: !!needsEnrol,
        next: (state && state.next) || 0,
      };
    });
  }

  async function oldestBatch(limit) {
    return run(["outbox"], "readonly", (s) => req(s.outbox.index("queued_at").getAll(null, limit)));
  }

  function wire(r) {
    return { uuid: r.uuid, kind: r.kind, recorded_at: r.recorded_at, data: r.data };
  }

  async function fetchWithTimeout(url, init, ms) {
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), ms);
    try {
      return await fetch(url, Object.assign({}, init, { signal: ctl.signal }));
    } finally {
      clearTimeout(timer);
    }
  }

  /* This phone's device id, asked of the instance each round (it changes if re-enrolled). */
  async function deviceId() {
    const res = await fetchWithTimeout(DEVICE_URL, { credentials: "same-origin", cache: "no-store" }, 8000);
    if (res.status === 401) return null;
    if (!res.ok) throw new Error("device " + res.status);
    const id = (await res.json()).id;
    await setMeta("device", id);
    return id;
  }

  /* Apply the instance's answer: acknowledged uuids leave, refused ones go to attention. */
  async function settle(batch, results) {
    const byUuid = new Map(batch.map((r) => [r.uuid, r]));
    let acked = 0;
    let refused = 0;
    await run(["outbox", "attention"], "readwrite", (s) => {
      for (const res of results || []) {
        const rec = byUuid.get(res.uuid);
        if (!rec) continue;
        byUuid.delete(res.uuid);
        if (ACKED.has(res.status)) {
          s.outbox.delete(rec.uuid);
          acked += 1;
        } else if (REFUSED.has(res.status)) {
          s.attention.put(Object.assign({}, rec, {
            status: res.status, reason: res.reason || res.status, refused_at: Date.now(),
          }));
          s.outbox.delete(rec.uuid);
          refused += 1;
        }
      }
    });
    return { acked, refused };
  }

  async function backoff(reason) {
    const state = (await getMeta("send_state")) || { failures: 0 };
    const failures = (state.failures || 0) + 1;
    const delay = Math.min(MAX_DELAY_MS, MIN_DELAY_MS * 2 ** (failures - 1));
    const next = Date.now() + delay * (0.8 + Math.random() * 0.4);
    await setMeta("send_state", { failures, next, reason });
    return { ok: false, reason, next };
  }

  /* Send everything waiting, batch by batch; {ok, sent, refused} or {ok:false, reason}. */
  async function sendNow(force) {
    const state = (await getMeta("send_state")) || {};
    if (!force && state.next && state.next > Date.now()) return { ok: false, reason: "later", next: state.next };
    let sent = 0;
    let refused = 0;
    let limit = BATCH;
    let source;
    try {
      source = await deviceId();
    } catch (_) {
      return backoff("network");
    }
    if (source === null) {
      await setMeta("needs_enrol", true);
      return { ok: false, reason: "enrol" };
    }
    for (;;) {
      const batch = await oldestBatch(limit);
      if (!batch.length) break;
      const body = JSON.stringify({ source, records: batch.map(wire) });
      if (body.length > MAX_BATCH_BYTES && limit > 1) {
        limit = Math.max(1, Math.floor(limit / 2));
        continue;
      }
      broadcast({ type: "sending" });
      let res;
      try {
        res = await fetchWithTimeout(PUSH_URL, {
          method: "POST",
          headers: { "Content-Type": "application/json", Accept: "application/json" },
          body,
          credentials: "same-origin",
          cache: "no-store",
        }, PUSH_TIMEOUT_MS);
      } catch (_) {
        return finish(await backoff("network"), sent, refused);
      }
      if (res.status === 401) {
        await setMeta("needs_enrol", true);
        await setMeta("device", null);
        return finish({ ok: false, reason: "enrol" }, sent, refused);
      }
      if (res.status === 413 && limit > 1) {
        limit = Math.max(1, Math.floor(limit / 2));
        continue;
      }
      if (!res.ok) return finish(await backoff("http " + res.status), sent, refused);
      let payload;
      try {
        payload = await res.json();
      } catch (_) {
        // The answer was lost on the way: the records stay and are sent again (the uuid dedupes).
        return finish(await backoff("network"), sent, refused);
      }
      const done = await settle(batch, payload.results);
      sent += done.acked;
      refused += done.refused;
      if (done.acked + done.refused === 0) return finish(await backoff("no results"), sent, refused);
    }
    await setMeta("send_state", { failures: 0, next: 0 });
    await setMeta("needs_enrol", false);
    if (sent + refused > 0) await setMeta("last_sent", Date.now());
    return finish({ ok: true }, sent, refused);
  }

  function finish(result, sent, refused) {
    result.sent = sent;
    result.refused = refused;
    broadcast({ type: "sent", result });
    return result;
  }

  /* Send, one sender at a time across the pages and the service worker. */
  function send(opts) {
    const force = !!(opts && opts.force);
    const locks = global.navigator && global.navigator.locks;
    if (locks) return locks.request("fieldapp-outbox-send", () => sendNow(force));
    return sendNow(force);
  }

  /* The waiting records as an export file's content (import it with `fieldapp import-outbox`). */
  async function exportData() {
    const records = (await all("outbox")).map(wire);
    return {
      format: "fieldapp-outbox",
      version: 1,
      device: (await getMeta("device")) || null,
      exported_at: new Date().toISOString(),
      records,
    };
  }

  async function dismiss(uuid) {
    return run(["attention"], "readwrite", (s) => { s.attention.delete(uuid); });
  }

  /* Remember this phone's device id while online, so an export made offline names it. */
  function refreshDevice() {
    return deviceId().catch(() => null);
  }

  global.FieldOutbox = {
    DB_NAME, CHANNEL, open, add, all, summary, send, fromForm, fromFields, refreshDevice,
    getMeta, setMeta, exportData, dismiss, fetchWithTimeout,
  };
})(self);
