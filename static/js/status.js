/* The status line on volunteer pages, the outbox page, and the gate form's outbox glue.
 *
 * Connectivity is judged by a real request to /ping, not navigator.onLine. Sending is
 * triggered on page load, `online`, the page becoming visible, a timer and "send now"; the
 * service worker adds Background Sync where the browser has it.
 */
(function () {
  "use strict";
  const O = self.FieldOutbox;
  const box = document.getElementById("outbox-status");
  if (!O || !box) return;

  const PING_EVERY_MS = 30000;
  const TICK_MS = 3000;
  // Rounds of sending failed in a row before the status line says that it keeps failing.
  const FAILING_AFTER = 3;
  const lang = document.documentElement.lang || "zh-Hans";
  const rtf = new Intl.RelativeTimeFormat(lang, { numeric: "auto" });
  const $ = (sel, root) => (root || document).querySelector(sel);
  let online = null;
  let sending = false;
  let lastPing = 0;
  // The flash says "saved on this phone, n waiting" while it is so; render() keeps it true.
  let flashSaysWaiting = false;
  // The clock window the instance judges by, for outbox.js in the service worker too (it has no
  // page to read it from).
  const tolerance = Number(box.dataset.clockToleranceMs);
  if (tolerance > 0) O.setMeta("clock_tolerance_ms", tolerance).catch(() => null);

  function t(key, vars) {
    const text = box.dataset["t" + key] || "";
    return text.replace(/\{(\w+)\}/g, (_, k) => (vars && k in vars ? vars[k] : ""));
  }

  function ago(ms) {
    const secs = Math.round((ms - Date.now()) / 1000);
    const units = [["day", 86400], ["hour", 3600], ["minute", 60]];
    for (const [unit, size] of units) {
      if (Math.abs(secs) >= size) return rtf.format(Math.round(secs / size), unit);
    }
    return rtf.format(Math.min(0, secs), "second");
  }

  function flash(text, bad) {
    const el = $("[data-outbox-flash]", box);
    el.textContent = text;
    el.classList.toggle("flash-error", !!bad);
    el.hidden = !text;
    flashSaysWaiting = false;
  }

  function flashWaiting(n) {
    flash(n ? t("Saved", { n }) : "");
    flashSaysWaiting = n > 0;
  }

  async function render() {
    let s;
    try {
      s = await O.summary();
    } catch (_) {
      return; // no IndexedDB (private mode on old Safari): the network path still works
    }
    const net = $("[data-status-net]", box);
    net.textContent = online === null ? t("Checking") : online ? t("Online") : t("Offline");
    net.className = "status-net " + (online ? "is-online" : online === false ? "is-offline" : "");
    box.dataset.waiting = String(s.waiting); // the queue: what the timer sends
    box.dataset.heldDue = String(!!s.heldDue);
    // What waits on this phone, held entries too (they go again by themselves): nobody may
    // think all was sent while one is still here only.
    let waiting = s.unsent ? t("Waiting", { n: s.unsent }) : t("NoneWaiting");
    if (s.unsent && s.oldest) waiting += " · " + t("Oldest", { age: ago(s.oldest) });
    $("[data-status-waiting]", box).textContent = waiting;
    $("[data-status-last]", box).textContent = s.lastSent
      ? t("LastSent", { when: ago(s.lastSent) }) : t("NeverSent");
    // What said "waiting" says it only while something waits: the count follows the outbox.
    if (flashSaysWaiting) flashWaiting(s.unsent);
    document.querySelectorAll("[data-outbox-note]").forEach((note) => {
      if (!s.unsent) note.hidden = true;
    });
    $("[data-status-enrol]", box).hidden = !s.needsEnrol;
    renderClock(s.clockOffset);
    // Entries waiting while sending keeps failing, or goes in smaller batches: not all is well.
    const trouble = $("[data-status-trouble]", box);
    const failing = s.failures >= FAILING_AFTER;
    trouble.textContent = failing ? t("Failing", { n: s.failures }) : s.smaller ? t("Slow") : "";
    trouble.classList.toggle("flash-error", failing);
    trouble.hidden = !s.waiting || s.needsEnrol || !trouble.textContent;
    const attention = $("[data-status-attention]", box);
    attention.hidden = !s.attention;
    if (s.attention) {
      const link = $("a", attention);
      link.dataset.template = link.dataset.template || link.textContent;
      link.textContent = link.dataset.template.replace("{n}", s.attention);
    }
    renderOutboxPage(s);
  }

  async function ping() {
    try {
      const asked = Date.now();
      const res = await O.fetchWithTimeout(box.dataset.pingUrl, { cache: "no-store" }, 5000);
      online = res.ok;
      if (res.ok) await noteClock(res, asked);
    } catch (_) {
      online = false;
    }
    lastPing = Date.now();
    render();
    return online;
  }

  /* The instance's clock as the ping answered (`now`, else its Date header) against ours, taken
   * halfway through the request: how far this phone's clock is off. */
  async function noteClock(res, asked) {
    const back = Date.now();
    let theirs = NaN;
    try {
      theirs = Date.parse((await res.json()).now);
    } catch (_) { /* not JSON: the header below */ }
    if (!isFinite(theirs)) theirs = Date.parse(res.headers.get("Date") || "") + 500;
    if (isFinite(theirs)) await O.noteClock(Math.round(theirs - (asked + back) / 2)).catch(() => null);
  }

  /* "3 days", "5 hours", "25 minutes": how far the clock is off, in the unit it is set by. */
  function gap(ms) {
    const minutes = Math.abs(ms) / 60000;
    const [amount, unit] = Math.round(minutes / 1440) >= 2 ? [Math.round(minutes / 1440), "day"]
      : Math.round(minutes / 60) >= 2 ? [Math.round(minutes / 60), "hour"]
      : [Math.round(minutes), "minute"];
    try {
      return new Intl.NumberFormat(lang, { style: "unit", unit, unitDisplay: "long" }).format(amount);
    } catch (_) {
      return amount + " " + unit; // a browser without unit formatting
    }
  }

  /* The phone's clock is wrong: say so, and how to put it right, until it is. */
  function renderClock(offset) {
    const line = $("[data-status-clock]", box);
    if (!line) return; // a page kept before this line existed
    const wrong = offset !== null && Math.abs(offset) > (tolerance || O.CLOCK_TOLERANCE_MS);
    line.hidden = !wrong;
    if (wrong) line.textContent = t(offset > 0 ? "ClockSlow" : "ClockFast", { gap: gap(offset) });
  }

  /* Send what waits if the instance answers (held records too, when their time to go again
   * has come: nothing else may be waiting); force skips the backoff wait. */
  async function sendSoon(force, loud) {
    if (sending) return;
    sending = true;
    try {
      const s = await O.summary().catch(() => null);
      if (!s || (!s.waiting && !s.heldDue && !loud)) return;
      if (!force && s.next > Date.now()) return;
      // A revoked phone waits for a new enrolment link, not for the network or for time.
      let failed = s.needsEnrol ? t("Enrol") : t("Failed");
      if (!(await ping())) {
        if (loud) flash(failed, true);
        return;
      }
      if (loud) flash(t("Sending"));
      const r = await O.send({ force });
      if (r.reason === "enrol") failed = t("Enrol");
      if (loud || r.sent) flash(r.ok || r.sent ? t("Sent", { n: r.sent }) : failed, !r.ok && !r.sent);
    } catch (_) {
      if (loud) flash(t("Failed"), true);
    } finally {
      sending = false;
      render();
    }
  }

  function freshIds(form) {
    const id = form.querySelector("input[name=uuid]");
    if (id) id.value = self.crypto.randomUUID();
    const at = form.querySelector("input[name=recorded_at]");
    if (at) at.value = "";
  }

  // The outbox glue below is for forms htmx sends (the daily report); the gate form sends
  // itself and does the same in gate.js (which loads this file once the form is usable).
  const HTMX_FORM = "form[data-outbox-kind][hx-post]";

  // A page kept by the service worker carries the uuid it had when kept: never reuse it.
  document.querySelectorAll(HTMX_FORM).forEach(freshIds);

  document.addEventListener("htmx:configRequest", (e) => {
    const form = e.detail.elt && e.detail.elt.closest && e.detail.elt.closest("form[data-outbox-kind]");
    if (!form) return;
    e.detail.headers["X-Outbox-Kind"] = form.dataset.outboxKind;
    // This phone's clock as it sends (see gate.js): a wrong one is corrected by the instance.
    e.detail.headers["X-Fieldapp-Sent-At"] = O.recordedAt();
    const boxes = [...form.querySelectorAll("input[type=checkbox][name]")].map((i) => i.name);
    e.detail.headers["X-Outbox-Booleans"] = [...new Set(boxes)].join(",");
  });

  // The moment of saving, not of rendering the form, is when the person passed; the first
  // submission fixes it, so a retry of the same record keeps the same content. (rules.js has
  // stopped a form that breaks a rule before this runs; the gate form, which may be saved
  // before this file is loaded, is stamped through gate.js.)
  document.addEventListener("submit", (e) => {
    const form = e.target;
    if (!form.matches || !form.matches(HTMX_FORM)) return;
    const at = form.querySelector("input[name=recorded_at]");
    if (at && !at.value) at.value = O.recordedAt();
  }, true);

  // While a save is on its way (a few seconds at most with one bar of signal) the form takes no
  // typing: its answer brings a fresh form, which would silently drop what was typed meanwhile.
  function busy(e, on) {
    const form = e.detail && e.detail.elt;
    if (!form || !form.matches || !form.matches("form[data-outbox-kind]")) return;
    form.inert = on;
    if (on) form.setAttribute("aria-busy", "true");
    else form.removeAttribute("aria-busy");
  }
  document.addEventListener("htmx:beforeSend", (e) => busy(e, true));
  document.addEventListener("htmx:afterRequest", (e) => busy(e, false));

  // The instance itself answered a save (the service worker's outbox answer carries no such
  // header): for this phone that is a send, as a push of the outbox is.
  document.addEventListener("htmx:afterRequest", (e) => {
    const xhr = e.detail && e.detail.xhr;
    if (!xhr || !e.detail.successful || !xhr.getResponseHeader("X-Outbox-Stored")) return;
    O.setMeta("last_sent", Date.now()).then(render, () => null);
  });

  // The gate form sent by gate.js, stored by the instance itself: a send, as above.
  const stored = (at) => O.setMeta("last_sent", at || Date.now()).then(render, () => null);
  document.addEventListener("outbox-stored", () => stored());
  if (self.FieldGate && FieldGate.sentAt) stored(FieldGate.sentAt); // before this file came

  // The service worker kept the entry on the phone: say so, and give a fresh form.
  document.addEventListener("outbox-saved", (e) => {
    const form = e.target.closest && e.target.closest(HTMX_FORM);
    if (form) {
      form.inert = false; // the answer is here: the fresh form takes typing (and focus) again
      form.removeAttribute("aria-busy");
      form.reset();
      freshIds(form);
      const first = form.querySelector("input:not([type=hidden]), select, textarea");
      if (first) first.focus({ preventScroll: true });
      // The page's own script fills the fresh form in (gate.js: direction, volunteer, what
      // was saved).
      form.dispatchEvent(new CustomEvent("outbox-form-fresh", { bubbles: true, detail: e.detail }));
    }
    flashWaiting(e.detail.waiting);
    ping(); // offline, or the instance failed: the status line says which
  });

  if (new URLSearchParams(location.search).get("saved") === "outbox") {
    O.summary().then((s) => flashWaiting(s.unsent)).catch(() => null);
  }

  const send = $("[data-send-now]", box);
  if (send) send.addEventListener("click", () => sendSoon(true, true));

  /* The outbox page, opened by the service worker in place of a page that needs the network:
   * it says so, with a link back to that page (one of this instance's paths only). */
  const offline = new URLSearchParams(location.search).get("offline") || "";
  const offlineNote = $("[data-offline-page]");
  if (offlineNote && /^\/(?![\/\\])[^\\\s]*$/.test(offline)) {
    $("[data-offline-again]", offlineNote).href = offline;
    offlineNote.hidden = false;
  }

  /* The outbox page: what waits and what needs attention. */
  async function renderOutboxPage(s) {
    const view = document.getElementById("outbox-view");
    if (!view) return;
    const [waiting, attention] = await Promise.all([O.all("outbox"), O.all("attention")]);
    // Held entries wait too (they go again by themselves): counted here, listed below with
    // why the office could not store them yet.
    const held = s.held;
    $("[data-outbox-count]", view).textContent = s.unsent;
    $("[data-attention-count]", view).textContent = attention.length;
    const list = $("[data-outbox-waiting]", view);
    fill(list, waiting, view, false);
    if (held && view.dataset.tHeldBelow) {
      if (!waiting.length) list.replaceChildren();
      const li = document.createElement("li");
      li.className = "muted";
      const link = document.createElement("a");
      link.href = "#attention";
      link.textContent = view.dataset.tHeldBelow.replace("{n}", held);
      li.append(link);
      list.append(li);
    }
    fill($("[data-outbox-attention]", view), attention, view, true);
  }

  function describe(r) {
    const d = r.data || {};
    const when = new Date(r.recorded_at).toLocaleString(lang);
    return [when, d.name, d.temperature && d.temperature + " °C"].filter(Boolean).join(" · ");
  }

  function fill(list, records, view, refused) {
    list.replaceChildren();
    if (!records.length) {
      const li = document.createElement("li");
      li.className = "muted";
      li.textContent = refused ? view.dataset.tNoAttention : view.dataset.tEmpty;
      list.append(li);
      return;
    }
    for (const r of records.slice(0, 200)) {
      const li = document.createElement("li");
      li.dataset.uuid = r.uuid;
      li.textContent = describe(r);
      if (refused && r.status === "held") {
        // Not refused: the office could not store it yet. It stays here and goes again.
        li.dataset.held = "";
        const reason = document.createElement("strong");
        reason.className = "reason";
        reason.textContent = view.dataset.tHeld.replace("{why}", r.reason || "");
        const again = document.createElement("button");
        again.type = "button";
        again.className = "secondary";
        again.textContent = view.dataset.tRetry;
        again.addEventListener("click", async () => {
          await O.retryHeld(true);
          render();
          sendSoon(true, true);
        });
        li.append(document.createElement("br"), reason, " ", again);
      } else if (refused) {
        // Expired: older than the office keeps entries, so not stored there (its date may be
        // wrong: the phone's clock). Only here now: exported, or removed on purpose.
        const expired = r.status === "expired";
        if (expired) li.dataset.expired = "";
        const reason = document.createElement("strong");
        reason.className = "reason";
        reason.textContent = expired ? view.dataset.tExpired : r.reason;
        const drop = document.createElement("button");
        drop.type = "button";
        drop.className = "secondary";
        drop.textContent = view.dataset.tDismiss;
        drop.addEventListener("click", async () => {
          if (!confirm(expired ? view.dataset.tConfirmDropExpired : view.dataset.tConfirmDismiss)) return;
          await O.dismiss(r.uuid);
          render();
        });
        li.append(document.createElement("br"), reason, " ", drop);
      }
      list.append(li);
    }
  }

  const exportButton = $("[data-export]");
  if (exportButton) {
    exportButton.addEventListener("click", async () => {
      const data = await O.exportData();
      const blob = new Blob([JSON.stringify(data, null, 1)], { type: "application/json" });
      const a = document.createElement("a");
      a.href = URL.createObjectURL(blob);
      a.download = "outbox-" + new Date().toISOString().slice(0, 19).replace(/[:T]/g, "-") + ".json";
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(a.href), 10000);
    });
  }

  try {
    const channel = new BroadcastChannel(O.CHANNEL);
    channel.onmessage = () => render();
  } catch (_) { /* the timer below keeps the line current */ }

  window.addEventListener("online", () => sendSoon(true));
  window.addEventListener("offline", () => { online = false; render(); });
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") sendSoon(true);
  });
  setInterval(() => {
    if (document.visibilityState !== "visible") return;
    if (Date.now() - lastPing > PING_EVERY_MS) ping();
    if (Number(box.dataset.waiting || 0) > 0 || box.dataset.heldDue === "true") sendSoon(false);
    else render();
  }, TICK_MS);

  render();
  ping().then((up) => { if (up) sendSoon(true); });
})();
