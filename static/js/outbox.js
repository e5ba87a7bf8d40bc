/* The outbox: entries waiting on this phone, in IndexedDB, keyed by their uuid.
 *
 * Loaded by the pages and by the service worker (importScripts), so both store and send the
 * same way. A record leaves the outbox only when the instance acknowledges its uuid; what the
 * instance refuses moves to "attention" with the reason. The stored value is plain data, never
 * a Request (no stale cookies or CSRF tokens are replayed).
 *
 * A record the instance cannot store at all (it answers 5xx or nonsense for any batch holding
 * it, and a plain answer to an empty one) is found by halving the batch and set aside in
 * "attention" as held: it stays on this phone, is tried again now and then and can be
 * exported, and every other record still goes.
 *
 * Each push carries this phone's clock (sent_at). When it is wrong, the instance holds what was
 * recorded by it and says by how much (clock_offset_ms): the records are timed again here by
 * that much (their uuids kept: they were never stored) and sent again at once.
 *
 * A clock that was wrong while recording and is right again when sending (a date reset by a
 * flat battery, network time back with the signal) is found by what the phone knows for sure:
 * each record remembers the instance's time at the phone's last contact before it was kept, so
 * it cannot have been made earlier than that, nor later than the instance's time now. A record
 * stamped outside those bounds is timed again inside them before it is sent (retimeWrongClock).
 *
 * A record the instance answers `expired` (older than its retention horizon) is not dropped:
 * it waits in "attention" until the volunteer exports or removes it. The export carries each
 * record's contact and this phone's clock, and the import (fieldapp/phones/outbox_import.py)
 * times the records by the same rule, mirrored in Python: a change to retimeWrongClock is made
 * there too (tests/browser/test_phone_clock.py runs both on the same records).
 */
(function (global) {
  "use strict";

  const DB_NAME = "fieldapp-outbox";
  // v1 kept {uuid, kind, form, saved_at} in "queue"; v2 keeps wire records in "outbox".
  const DB_VERSION = 2;
  const PUSH_URL = "/sync/v1/push";
  const DEVICE_URL = "/pwa/device";
  // How many records one push carries: BATCH at most, fewer on a slow uplink (see sendNow).
  const BATCH = 250;
  const MAX_BATCH_BYTES = 900000;
  const PUSH_TIMEOUT_MS = 20000;
  // How long a save from a form waits for the instance's answer before the phone keeps the
  // record here instead: the service worker's limit, and the page's when no worker is in
  // control (static/js/gate.js).
  const SUBMIT_TIMEOUT_MS = 5000;
  const MIN_DELAY_MS = 1000;
  const MAX_DELAY_MS = 5 * 60 * 1000;
  const HELD_RETRY_MS = 10 * 60 * 1000;
  const ACKED = new Set(["applied", "duplicate"]);
  const REFUSED = new Set(["rejected", "conflict"]);
  const CHANNEL = "fieldapp-outbox";
  // How far the phone's clock may be off before it counts as wrong (sync.store.CLOCK_TOLERANCE,
  // which the status line gives as data-clock-tolerance-ms and status.js keeps in "meta"; this
  // is only for a phone that has not opened a page since).
  const CLOCK_TOLERANCE_MS = 10 * 60 * 1000;
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

  /* The one way a record's time of recording is stamped: now (or the moment ms, such as the
   * tap on "save" on a gate page that saved before it had loaded this file: gate.js), in UTC,
   * as ISO 8601 with milliseconds (2026-11-23T08:30:00.000Z), as the instance stores it. */
  function recordedAt(ms) {
    return new Date(ms === undefined ? Date.now() : ms).toISOString();
  }

  /* Days and clock times at the gates: a moment in the instance's time zone (its TIMEZONE,
   * which the pages carry as data-tz), as the instance writes them (fieldapp/days.py). Here,
   * in the file every page that shows a day loads (a page the service worker kept from an
   * older version too). A zone this browser does not know, or none, is the phone's own: a day
   * shown, never an error. One formatter per zone, however many records are asked about. */
  const formats = new Map();
  function partsAt(when, tz) {
    let format = formats.get(tz);
    if (!format) {
      const options = { year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit",
        minute: "2-digit", hourCycle: "h23" };
      try {
        format = new Intl.DateTimeFormat("en-CA", Object.assign({ timeZone: tz || undefined }, options));
      } catch (_) {
        format = new Intl.DateTimeFormat("en-CA", options);
      }
      formats.set(tz, format);
    }
    return Object.fromEntries(format.formatToParts(when).map((p) => [p.type, p.value]));
  }
  const ymd = (p) => p.year + "-" + p.month + "-" + p.day;

  /* The day (YYYY-MM-DD) of a timestamp at the gates; "" if it is not one. */
  function day(iso, tz) {
    const when = new Date(iso);
    if (!isFinite(when)) return "";
    return ymd(partsAt(when, tz));
  }

  /* Today at the gates (YYYY-MM-DD). */
  function today(tz) {
    return day(Date.now(), tz);
  }

  /* A timestamp at the gates as the gate's list writes its times (views.gate_time): 08:30
   * today, 11-22 08:30 on another day; "" if it is not one. */
  function clock(iso, tz) {
    const when = new Date(iso);
    if (!isFinite(when)) return "";
    const p = partsAt(when, tz);
    const time = p.hour + ":" + p.minute;
    return ymd(p) === today(tz) ? time : p.month + "-" + p.day + " " + time;
  }

  /* A wire record from form fields; checkbox fields become true/false. Every other field is
   * kept as the text it is: a yes/no radio's "true" is read by the instance's rules as it reads
   * a form's, and a note or a name typed as "true" stays text (a boolean there is refused). */
  function fromFields(fields, kind, booleans, uuid, queuedAt) {
    const bools = new Set(booleans || []);
    const data = {};
    for (const name of bools) data[name] = false;
    for (const [k, v] of Object.entries(fields)) {
      if (ENVELOPE.has(k)) continue;
      data[k] = bools.has(k) ? !["", "false", "off", "0"].includes(v) : v;
    }
    const at = queuedAt || Date.now();
    return {
      uuid: uuid || fields.uuid || global.crypto.randomUUID(),
      kind: kind || "entry",
      recorded_at: fields.recorded_at || recordedAt(at),
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

  /* A record in "attention" that is held: set aside until the instance can store it, it goes
   * again by itself (retryHeld). Refused and expired ones are not sent again. */
  const isHeld = (r) => r.status === "held";

  /* The one rule for what waits on this phone to be sent, what the volunteer is told waits
   * everywhere (the status line, the gate's list, a save's "n waiting"): the queue and the held
   * records, read in the transaction of the stores s (outbox, attention). {queued: the queue's
   * records, oldest first, with records, else only how many are queued; held: the held
   * records; unsent: how many records wait, both together}. */
  async function unsentIn(s, records) {
    const [queued, kept] = await Promise.all([
      req(records ? s.outbox.index("queued_at").getAll() : s.outbox.count()),
      req(s.attention.getAll()),
    ]);
    const held = kept.filter(isHeld);
    return { queued, held, unsent: (records ? queued.length : queued) + held.length };
  }

  /* Store a record durably; resolves with how many wait (unsentIn), after the commit. It
   * remembers the phone's last contact with the instance (the instance's time then, and how far
   * this phone's clock was off then): it was made after that, whatever this phone's clock said. */
  async function add(record) {
    const waiting = await run(["outbox", "attention", "meta"], "readwrite", async (s) => {
      const clock = await req(s.meta.get("clock"));
      const kept = Object.assign({}, record);
      if (contactAt(clock) !== null && kept.contact_at === undefined) {
        kept.contact_at = contactAt(clock);
        kept.contact_offset = clock.offset_ms;
      }
      s.outbox.put(kept);
      return (await unsentIn(s, false)).unsent;
    });
    broadcast({ type: "queued", uuid: record.uuid, waiting });
    return waiting;
  }

  async function all(store) {
    return run([store], "readonly", (s) =>
      store === "outbox" ? req(s.outbox.index("queued_at").getAll()) : req(s[store].getAll()));
  }

  /* The records that wait (unsentIn): the queue, oldest first, then the held ones. */
  async function unsentRecords() {
    return run(["outbox", "attention"], "readonly", async (s) => {
      const { queued, held } = await unsentIn(s, true);
      return queued.concat(held);
    });
  }

  async function getMeta(key) {
    return run(["meta"], "readonly", (s) => req(s.meta.get(key)));
  }

  async function setMeta(key, v) {
    return run(["meta"], "readwrite", (s) => { s.meta.put(v, key); });
  }

  /* {unsent, waiting, held, oldest (ms), attention, heldDue, lastSent, needsEnrol, next,
   * failures (rounds failed in a row), smaller (pushes go in smaller batches: the uplink is
   * slow), clockOffset} for the status line; unsent: what the volunteer is told waits (see
   * unsentIn()), the queue (waiting: what a send sends now) and the held records (in attention,
   * they go again by themselves), oldest the first of them kept; heldDue: the held records'
   * time to go again has come (see retryHeld), whether anything else waits or not;
   * clockOffset: the instance's clock minus this phone's (ms) when last heard, or null. */
  async function summary() {
    return run(["outbox", "attention", "meta"], "readonly", async (s) => {
      const [{ queued: waiting, held, unsent }, attention, first, lastSent, needsEnrol, state,
        batch, clock, heldRetry] = await Promise.all([
          unsentIn(s, false),
          req(s.attention.count()),
          req(s.outbox.index("queued_at").openCursor()),
          req(s.meta.get("last_sent")),
          req(s.meta.get("needs_enrol")),
          req(s.meta.get("send_state")),
          req(s.meta.get("batch")),
          req(s.meta.get("clock")),
          req(s.meta.get("held_retry")),
        ]);
      const since = held.map((r) => r.queued_at).concat(first ? [first.value.queued_at] : [])
        .filter((at) => typeof at === "number");
      return {
        unsent,
        waiting,
        held: held.length,
        attention,
        heldDue: held.length > 0 && Date.now() - (heldRetry || 0) >= HELD_RETRY_MS,
        oldest: since.length ? Math.min(...since) : null,
        lastSent: lastSent || null,
        needsEnrol: !!needsEnrol,
        next: (state && state.next) || 0,
        failures: (state && state.failures) || 0,
        smaller: !!batch && batch < BATCH,
        clockOffset: clock && typeof clock.offset_ms === "number" ? clock.offset_ms : null,
      };
    });
  }

  async function oldestBatch(limit) {
    return run(["outbox"], "readonly", (s) => req(s.outbox.index("queued_at").getAll(null, limit)));
  }

  function wire(r) {
    const out = { uuid: r.uuid, kind: r.kind, recorded_at: r.recorded_at, data: r.data };
    if (r.restamped) out.restamped = true; // timed again by the instance's offset: as it is
    return out;
  }

  /* What the instance said of this phone's clock: its own minus ours, in ms; and its time then
   * (server_at, ms): this phone's last contact with it. The pages hear of it (a "clock"
   * message): the screening page's "today" is the instance's. */
  async function noteClock(offsetMs) {
    if (typeof offsetMs !== "number" || !isFinite(offsetMs)) return;
    const at = Date.now();
    await setMeta("clock", { offset_ms: offsetMs, at, server_at: at + offsetMs });
    broadcast({ type: "clock", offset_ms: offsetMs });
  }

  /* The instance's time at the last contact noted in clock (ms), or null. */
  function contactAt(clock) {
    if (!clock || typeof clock.offset_ms !== "number") return null;
    const at = typeof clock.server_at === "number" ? clock.server_at : clock.at + clock.offset_ms;
    return isFinite(at) ? at : null;
  }

  /* Time again the waiting records this phone's clock stamped wrongly while it recorded. What
   * the phone knows for sure: a record was made after its last contact before it was kept
   * (contact_at, the instance's time) and no later than the instance's time now (Date.now() +
   * offsetNow, measured this round). A record inside those bounds by the offset measured now is
   * left as it is (its clock was right, or was already as wrong as it is now: the instance holds
   * it and gives that offset). One outside them is timed, in this order:
   * - by the offset the clock had at that contact, if that puts it inside (the clock was that
   *   far off already and has been set right since), or by none (stamped before it went wrong);
   * - else as late as the bounds allow: the records of one contact keep the gaps between them
   *   (the clock ran at its pace, from a wrong start), the latest at now, none before the contact.
   * Marked restamped, it is stored at that time, never held or expired for its clock. Resolves
   * with how many were timed again. */
  async function retimeWrongClock(offsetNow) {
    return run(["outbox", "meta"], "readwrite", async (s) => {
      const tolerance = Number(await req(s.meta.get("clock_tolerance_ms"))) || CLOCK_TOLERANCE_MS;
      const now = Date.now() + offsetNow;
      const groups = new Map();
      let count = 0;
      for (const rec of await req(s.outbox.getAll())) {
        const at = Date.parse(rec.recorded_at);
        if (rec.restamped || !isFinite(at)) continue;
        const since = typeof rec.contact_at === "number" ? rec.contact_at : -Infinity;
        const inside = (t) => t >= since - tolerance && t <= now + tolerance;
        if (inside(at + offsetNow)) continue;
        count += 1;
        const by = [rec.contact_offset, 0].find((o) => typeof o === "number" && inside(at + o));
        if (by !== undefined) {
          s.outbox.put(retimed(rec, at + by));
          continue;
        }
        // The records of one contact stamped behind it (the clock went back), or those ahead.
        const key = since + (at + offsetNow > now ? " ahead" : " behind");
        if (!groups.has(key)) groups.set(key, []);
        groups.get(key).push([rec, at, since]);
      }
      for (const group of groups.values()) {
        const shift = now - group.reduce((latest, [, at]) => Math.max(latest, at), -Infinity);
        for (const [rec, at, since] of group) {
          s.outbox.put(retimed(rec, Math.min(now, Math.max(since, at + shift))));
        }
      }
      return count;
    });
  }

  function retimed(rec, ms) {
    return Object.assign({}, dayMoved(rec, ms), {
      recorded_at: recordedAt(ms), restamped: true, stamped_at: rec.recorded_at,
    });
  }

  /* The record with its day moved as its time of recording is moved to ms. A record whose day
   * this phone's clock set (a screening answer: screening.js keeps the zone of that "today",
   * the instance's TIMEZONE, as day_tz) is of the day by the clock that stamped it: its day
   * moves by as many calendar days, in that zone, as its time does ("today" by a wrong clock
   * becomes today by the right one, "yesterday" stays the day before), and so does its test
   * date when a chip of that page set it by the same clock (nat_date_by_clock; a typed one
   * stays as typed). Any other record (an
   * entry has no day; a daily report's is the day the instance's page gave) is as it is. The
   * import does the same (fieldapp/phones/outbox_import.py day_moved). */
  function dayMoved(rec, ms) {
    if (typeof rec.day_tz !== "string" || !rec.data || typeof rec.data !== "object") return rec;
    const midnight = (d) => Date.parse(d + "T00:00:00.000Z");
    const by = midnight(day(recordedAt(ms), rec.day_tz)) - midnight(day(rec.recorded_at, rec.day_tz));
    // Its day; and its test date too when a chip set it ("today", "yesterday": nat_date_by_clock).
    const fields = rec.nat_date_by_clock === true ? ["day", "nat_date"] : ["day"];
    const data = Object.assign({}, rec.data);
    let moved = false;
    for (const name of fields) {
      const given = rec.data[name];
      if (typeof given !== "string" || !/^[0-9]{4}-[0-9]{2}-[0-9]{2}$/.test(given)) continue;
      const from = new Date(midnight(given));
      if (!isFinite(from) || from.getUTCFullYear() < 1 || from.toISOString().slice(0, 10) !== given) continue;
      const to = new Date(from.getTime() + by);
      if (!isFinite(to) || to.getUTCFullYear() < 1 || to.getUTCFullYear() > 9999) continue;
      data[name] = to.toISOString().slice(0, 10);
      moved = true;
    }
    return moved ? Object.assign({}, rec, { data }) : rec;
  }

  /* A record held because this phone's clock was wrong, timed by the instance's clock: the
   * same record (uuid, data), recorded_at moved by the offset the instance gave (and a day its
   * clock set, by as many days: dayMoved). Null if it
   * cannot be (timed again once already, or a time that is not one). */
  function restamp(rec, offsetMs) {
    const at = Date.parse(rec.recorded_at) + offsetMs;
    if (rec.restamped || !isFinite(at) || Math.abs(at) > 8.64e15) return null;
    return Object.assign({}, dayMoved(rec, at), { recorded_at: recordedAt(at), restamped: true });
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
    return (await contact()).id;
  }

  /* Ask the instance for this phone's device id: {id (null: not enrolled), offset: how far
   * this phone's clock is behind the instance's, by the answer's Date header, or null}. The
   * header is in whole seconds and was written before the answer came back, so the offset is
   * taken low (by a second and the request's time at most): the instance's time it gives is
   * never later than the real one, and a record timed "as late as it can be" is not too late. */
  async function contact() {
    const res = await fetchWithTimeout(DEVICE_URL, { credentials: "same-origin", cache: "no-store" }, 8000);
    const theirs = Date.parse(res.headers.get("Date") || "");
    const offset = isFinite(theirs) ? theirs - Date.now() : null;
    if (offset !== null) await noteClock(offset);
    if (res.status === 401) return { id: null, offset };
    if (!res.ok) throw new Error("device " + res.status);
    const id = (await res.json()).id;
    await setMeta("device", id);
    return { id, offset };
  }

  /* Apply the instance's answer: acknowledged uuids leave, refused ones go to attention. The
   * answer has a result per record, in order (one whose uuid was refused names none). */
  async function settle(batch, results) {
    let acked = 0;
    let refused = 0;
    let restamped = 0;
    if (!Array.isArray(results) || results.length !== batch.length) return { acked, refused, restamped };
    await run(["outbox", "attention"], "readwrite", (s) => {
      for (let i = 0; i < batch.length; i += 1) {
        const rec = batch[i];
        const res = results[i] || {};
        if (res.uuid && res.uuid !== rec.uuid) continue;
        const again = res.status === "held" && typeof res.clock_offset_ms === "number"
          ? restamp(rec, res.clock_offset_ms) : null;
        if (ACKED.has(res.status)) {
          s.outbox.delete(rec.uuid);
          acked += 1;
        } else if (res.status === "expired") {
          // Older than the instance keeps records: not stored there. Never dropped unseen (a
          // wrong date may have made it look old): it waits here to be exported or removed.
          s.attention.put(Object.assign({}, rec, {
            status: "expired", reason: res.reason || "", refused_at: Date.now(),
          }));
          s.outbox.delete(rec.uuid);
          refused += 1;
        } else if (again) {
          // Recorded by this phone's wrong clock: timed again, it waits to go at once.
          s.outbox.put(again);
          restamped += 1;
        } else if (REFUSED.has(res.status) || res.status === "held") {
          // held: the instance cannot store it yet (its site has not reached it, or this
          // phone's clock is ahead); kept here and sent again now and then, as below.
          s.attention.put(Object.assign({}, rec, {
            status: res.status, reason: res.reason || res.status, refused_at: Date.now(),
          }));
          s.outbox.delete(rec.uuid);
          refused += 1;
        }
      }
    });
    return { acked, refused, restamped };
  }

  /* Set a record aside that the instance cannot store: kept here, out of the queue's way. */
  async function hold(rec, why) {
    await run(["outbox", "attention"], "readwrite", (s) => {
      s.attention.put(Object.assign({}, rec, { status: "held", reason: why, refused_at: Date.now() }));
      s.outbox.delete(rec.uuid);
    });
  }

  /* Held records go back into the queue now and then: the instance may store them by now. */
  async function retryHeld(force) {
    const last = (await getMeta("held_retry")) || 0;
    if (!force && Date.now() - last < HELD_RETRY_MS) return 0;
    await setMeta("held_retry", Date.now());
    return run(["outbox", "attention"], "readwrite", async (s) => {
      const held = (await req(s.attention.getAll())).filter(isHeld);
      for (const r of held) {
        const back = Object.assign({}, r);
        delete back.status;
        delete back.reason;
        delete back.refused_at;
        s.outbox.put(back);
        s.attention.delete(r.uuid);
      }
      return held.length;
    });
  }

  /* One POST of records; what became of it: ok (with the answer), enrol, too_big, network
   * (nothing came back), timeout (nothing came back within PUSH_TIMEOUT_MS) or failed (the
   * instance answered, but not with results). */
  async function post(source, records) {
    // sent_at: this phone's clock now, which the instance compares with its own.
    const body = JSON.stringify({ source, sent_at: new Date().toISOString(), records: records.map(wire) });
    let res;
    try {
      res = await fetchWithTimeout(PUSH_URL, {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "application/json" },
        body,
        credentials: "same-origin",
        cache: "no-store",
      }, PUSH_TIMEOUT_MS);
    } catch (err) {
      return { kind: err && err.name === "AbortError" ? "timeout" : "network" };
    }
    if (res.status === 401) return { kind: "enrol" };
    if (res.status === 413) return { kind: "too_big" };
    if (!res.ok) return { kind: "failed", why: "HTTP " + res.status };
    try {
      const payload = await res.json();
      if (Array.isArray(payload.results)) return { kind: "ok", payload };
    } catch (_) { /* cut short on the way, or not the instance answering */ }
    return { kind: "failed", why: "unreadable answer" };
  }

  async function backoff(reason) {
    const state = (await getMeta("send_state")) || { failures: 0 };
    const failures = (state.failures || 0) + 1;
    const delay = Math.min(MAX_DELAY_MS, MIN_DELAY_MS * 2 ** (failures - 1));
    const next = Date.now() + delay * (0.8 + Math.random() * 0.4);
    await setMeta("send_state", { failures, next, reason });
    return { ok: false, reason, next };
  }

  /* Send everything waiting, batch by batch; {ok, sent, refused, held} or {ok:false, reason}. */
  async function sendNow(force) {
    const state = (await getMeta("send_state")) || {};
    if (!force && state.next && state.next > Date.now()) return { ok: false, reason: "later", next: state.next };
    const counts = { sent: 0, refused: 0, held: 0 };
    // How many records this phone's uplink took in time lately (see the timeout below), and
    // how many this push may carry (fewer while a record the instance cannot take is sought).
    let fits = Math.min(BATCH, (await getMeta("batch")) || BATCH);
    let limit = fits;
    let source;
    let offset;
    try {
      ({ id: source, offset } = await contact());
    } catch (_) {
      return backoff("network");
    }
    if (source === null) {
      await setMeta("needs_enrol", true);
      return { ok: false, reason: "enrol" };
    }
    await retryHeld(false);
    // Only by the instance's time as of now: without it a clock wrong now would look right.
    if (offset !== null) await retimeWrongClock(offset);
    for (;;) {
      const batch = await oldestBatch(limit);
      if (!batch.length) break;
      if (JSON.stringify(batch.map(wire)).length > MAX_BATCH_BYTES && limit > 1) {
        limit = Math.max(1, Math.floor(limit / 2));
        continue;
      }
      broadcast({ type: "sending" });
      const started = Date.now();
      const got = await post(source, batch);
      if (got.kind === "enrol") {
        await setMeta("needs_enrol", true);
        await setMeta("device", null);
        return finish({ ok: false, reason: "enrol" }, counts);
      }
      if (got.kind === "too_big" && limit > 1) {
        limit = Math.max(1, Math.floor(limit / 2));
        continue;
      }
      if (got.kind === "failed" && batch.length > 1) {
        // Something in this batch may be what the instance cannot take: try half of it.
        limit = Math.ceil(batch.length / 2);
        continue;
      }
      if (got.kind === "failed") {
        // One record fails alone. If the instance answers an empty batch, the record is the
        // trouble: set it aside and go on; otherwise the instance is, and we wait for it.
        const probe = await post(source, []);
        if (probe.kind !== "ok") return finish(await backoff(got.why), counts);
        await hold(batch[0], got.why);
        counts.held += 1;
        limit = fits;
        continue;
      }
      // A slow uplink: on one bar (4 kB/s) a full batch (~100 kB) cannot go up within
      // PUSH_TIMEOUT_MS, and trying it again would fail for ever. So a push that times out is
      // tried again at once with half as many records, down to one, and that size is kept for
      // the next rounds; a full push that went in under half the time limit lets the next one
      // be twice as big, up to BATCH (a good link sends full batches). A push that timed out
      // may have been stored all the same: the records' uuids make the repeat harmless.
      if (got.kind === "timeout" && batch.length > 1) {
        fits = limit = Math.ceil(batch.length / 2);
        await setMeta("batch", fits);
        continue;
      }
      if (got.kind !== "ok") {
        // Nothing came back (offline, timed out, cut short): the records stay and are sent
        // again; their uuids make a repeat harmless.
        return finish(await backoff(got.kind === "too_big" ? "http 413" : got.kind), counts);
      }
      await noteClock(got.payload.clock_offset_ms);
      const done = await settle(batch, got.payload.results);
      counts.sent += done.acked;
      counts.refused += done.refused;
      // Timed again, they are still in the queue: the next batch sends them.
      if (done.acked + done.refused + done.restamped === 0) {
        return finish(await backoff("no results"), counts);
      }
      // Records went: that is a send, and sending is not failing (a slow backlog drains over
      // many pushes, and the status line says how it goes meanwhile).
      await setMeta("send_state", { failures: 0, next: 0 });
      await setMeta("last_sent", Date.now());
      if (batch.length === fits && fits < BATCH && Date.now() - started < PUSH_TIMEOUT_MS / 2) {
        fits = limit = Math.min(BATCH, fits * 2);
        await setMeta("batch", fits);
      }
    }
    await setMeta("send_state", { failures: 0, next: 0 });
    await setMeta("needs_enrol", false);
    return finish({ ok: true }, counts);
  }

  function finish(result, counts) {
    Object.assign(result, counts);
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

  /* A record as exported: as it is sent, with what this phone knew of its clock when it kept
   * the record (contact_at, contact_offset), so that the import times it as retimeWrongClock
   * would before sending (fieldapp/phones/outbox_import.py). */
  function exported(r) {
    const out = wire(r);
    if (typeof r.contact_at === "number") out.contact_at = r.contact_at;
    if (typeof r.contact_offset === "number") out.contact_offset = r.contact_offset;
    if (typeof r.day_tz === "string") out.day_tz = r.day_tz; // its day is by its clock: dayMoved
    if (r.nat_date_by_clock === true) out.nat_date_by_clock = true; // and its test date
    return out;
  }

  /* The records this phone still holds for the office, the waiting, the held and the expired
   * ones, as an export file's content (import it with `fieldapp import-outbox`). With this
   * phone's clock as it exports (exported_at) and its last contact with the instance (clock:
   * offset_ms, at, server_at, as kept in "meta"): the import's evidence of how far it was off. */
  async function exportData() {
    const held = (await all("attention")).filter((r) => isHeld(r) || r.status === "expired");
    const records = (await all("outbox")).concat(held).map(exported);
    return {
      format: "fieldapp-outbox",
      version: 1,
      device: (await getMeta("device")) || null,
      exported_at: new Date().toISOString(),
      clock: (await getMeta("clock")) || null,
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
    DB_NAME, CHANNEL, SUBMIT_TIMEOUT_MS, open, add, all, unsentRecords, summary, send, fromForm,
    fromFields, refreshDevice, getMeta, setMeta, exportData, dismiss, fetchWithTimeout, retryHeld,
    recordedAt, noteClock, CLOCK_TOLERANCE_MS, retimeWrongClock,
  };
  global.FieldDays = { day, today, clock };
})(self);
