/* The gate's last entries (#gate .last-entries): as they are now when the instance answers, and
 * honest when it does not. A page the service worker kept, or one left open when the network
 * went, lists the entries as they were when the list was made: it then says so ("Offline: as
 * of 08:30"), and the entries this phone still keeps for sending are shown above it, marked
 * "Not sent", so that the volunteer finds the people just registered.
 *
 * The list is asked for again when the page may be a kept copy (fieldapp:kept, pwa.js), when
 * the network comes back, when this phone has sent entries, and, for the entries another
 * phone at the same gate saves, when the page comes back on the screen and every two minutes
 * while it is there. Its answer renews the form's
 * CSRF token (the kept one may be of a lost session) and, when the site's code changed since
 * the page was kept (X-Fieldapp-Gate), opens the new code's page unless something is typed.
 * Loaded by gate.js after outbox.js; the words are the list's data-t-* attributes.
 */
(function () {
  "use strict";
  const source = document.querySelector("[data-last-url]");
  if (!source) return;
  const O = self.FieldOutbox;
  const SHOWN = 10; // as many as the instance's list (entries.last_at_site)

  const section = () => document.querySelector("#gate .last-entries");
  const entryForm = () => document.getElementById("entry-form");

  /* A UTC timestamp at the gates (the instance's TIMEZONE), as the list's own times are
   * written (FieldDays, outbox.js; no time if that file could not be loaded). */
  const clock = (iso, tz) => (self.FieldDays ? FieldDays.clock(iso, tz) : "");

  /* Say (or stop saying) that the list is as it was when it was made. */
  function stale(on) {
    const list = section();
    const note = list && list.querySelector("[data-last-offline]");
    if (!note) return; // a page kept before the note existed
    if (on) note.textContent = note.dataset.tOffline.replace("{time}", () => clock(list.dataset.asOf, list.dataset.tz));
    note.hidden = !on;
  }

  function labelOf(f, name, value) {
    const input = f.querySelector("input[name=" + name + "][value=\"" + CSS.escape(String(value)) + "\"]");
    const label = input && input.closest("label");
    return label ? label.textContent.trim() : String(value || "");
  }

  function span(className, text) {
    const el = document.createElement("span");
    el.className = className;
    el.textContent = text;
    return el;
  }

  /* One entry that waits on this phone, drawn as the instance draws its list's. */
  function item(f, list, record) {
    const d = record.data || {};
    const rules = self.FieldRules && FieldRules.rulesOf(f);
    const t = rules ? FieldRules.parseTemperature(String(d.temperature || ""), rules) : null;
    const li = document.createElement("li");
    li.className = "entry entry-unsent" + (t !== null && t >= rules.fever_at ? " entry-fever" : "");
    li.dataset.unsent = record.uuid;
    const who = document.createElement("strong");
    who.className = "who";
    who.textContent = d.name || "";
    li.append(
      span("badge badge-unsent", list.dataset.tUnsent),
      span("when", clock(record.recorded_at, list.dataset.tz)),
      span("badge dir-" + d.direction, labelOf(f, "direction", d.direction)),
      who,
      span("muted", labelOf(f, "person_type", d.person_type)),
      span("temp", (t === null ? String(d.temperature || "") : t.toFixed(1)) + " °C"),
    );
    if (d.health_code) li.append(span("badge badge-" + d.health_code, labelOf(f, "health_code", d.health_code)));
    return li;
  }

  // Queued elsewhere (the service worker, another page): drawn once a burst is over, not
  // read whole for each of its entries (an outbox of hundreds filled at once).
  let timer = 0;
  function later() {
    clearTimeout(timer);
    timer = setTimeout(unsent, 300);
  }

  /* The entries of this site that wait on this phone, newest first, above the list. */
  async function unsent() {
    const list = section();
    const f = entryForm();
    const box = list && list.querySelector("[data-unsent-list]");
    if (!O || !box || !f || !f.elements.site_id) return;
    let waiting;
    try {
      // Held ones too: still here only, sent again by themselves (a page kept by an older
      // version may come with an outbox.js without unsentRecords).
      waiting = await (O.unsentRecords ? O.unsentRecords() : O.all("outbox"));
    } catch (_) {
      return; // no IndexedDB: nothing is kept on this phone either
    }
    // One the instance lists already (stored, its answer lost) has arrived: listed once.
    const listed = new Set([...list.querySelectorAll("[data-uuid]")].map((li) => li.dataset.uuid));
    const mine = waiting
      .filter((r) => r.kind === "entry" && r.data && r.data.site_id === f.elements.site_id.value)
      .filter((r) => !listed.has(r.uuid))
      .sort((a, b) => (a.recorded_at < b.recorded_at ? 1 : -1))
      .slice(0, SHOWN);
    if (section() !== list) return; // replaced meanwhile: its own turn draws it
    box.replaceChildren(...mine.map((r) => item(f, list, r)));
    box.hidden = !mine.length;
    const none = list.querySelector("[data-last-none]");
    if (none) none.hidden = mine.length > 0;
    // The list as it is, with what waits here: gate.js says if the page's last save is in it.
    document.dispatchEvent(new CustomEvent("last-entries-drawn"));
  }

  /* The list as it is now, from the instance; without an answer, the list says how old it is.
   * Asked for while an answer is on its way (entries were sent meanwhile): asked again after. */
  let asking = null;
  let again = false;
  function refresh() {
    if (asking) {
      again = true;
      return asking;
    }
    asking = fetch(source.dataset.lastUrl, { credentials: "same-origin", headers: { "HX-Request": "true" } })
      .then(async (res) => {
        if (!res.ok) throw new Error("HTTP " + res.status);
        const html = await res.text();
        const t = document.createElement("template");
        t.innerHTML = html;
        const fresh = t.content.querySelector(".last-entries");
        const old = section();
        if (fresh && old) old.replaceWith(fresh);
        const token = self.FieldGate ? FieldGate.tokenOf(t.content) : "";
        const mine = document.getElementById("csrf_token");
        if (token && mine) mine.value = token;
        await unsent();
        follow(res.headers.get("X-Fieldapp-Gate"));
      })
      .catch(() => {
        stale(true);
        return unsent();
      })
      .finally(() => {
        asking = null;
        if (again) {
          again = false;
          refresh();
        }
      });
    return asking;
  }

  /* The site's code changed since this page was kept: its page under the new code, once the
   * service worker has kept it (and this address as leading there), so that it opens even if
   * the network goes again. Not while something is typed: this page still saves, to the
   * site, and the next opening of the gate moves. */
  let following = false;
  async function follow(gate) {
    if (following || !gate || gate === location.pathname || !/^\/s\/[^/?#\\]+$/.test(gate)) return;
    const untouched = () => self.FieldGate && FieldGate.untouched && FieldGate.untouched();
    const worker = navigator.serviceWorker && navigator.serviceWorker.controller;
    if (!untouched()) return;
    following = true;
    try {
      // Asked again now and then: the worker's network may come back a moment after the
      // page's. Not kept within a while (the network went again): the next opening moves.
      for (let tries = 0; worker && !(await caches.match(gate, { ignoreVary: true })); tries += 1) {
        if (tries >= 60) return;
        if (tries % 4 === 0) worker.postMessage({ type: "follow", from: location.pathname });
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
      if (untouched()) location.replace(gate);
    } catch (_) {
      /* no caches here: the next opening moves */
    } finally {
      following = false;
    }
  }

  const onScreen = () => document.visibilityState === "visible" && navigator.onLine !== false;
  document.addEventListener("visibilitychange", () => {
    if (onScreen()) refresh();
  });
  setInterval(() => {
    if (onScreen()) refresh();
  }, 2 * 60 * 1000);
  document.body.addEventListener("fieldapp:kept", refresh);
  window.addEventListener("online", refresh);
  window.addEventListener("offline", () => stale(true));
  // Kept on this phone (the instance could not be reached): above the list, which is as old
  // as it was.
  document.addEventListener("outbox-saved", () => {
    stale(true);
    unsent();
  });
  // An online save brought the list as it is now: what still waits goes above it.
  document.addEventListener("gate-swapped", () => unsent());
  if (O) {
    try {
      const channel = new BroadcastChannel(O.CHANNEL);
      channel.onmessage = (event) => {
        const msg = event.data || {};
        // Sent: those entries are in the instance's list now.
        if (msg.type === "sent" && msg.result && msg.result.sent > 0) refresh();
        else if (msg.type === "queued") later();
      };
    } catch (_) { /* no BroadcastChannel: the list follows the next opening */ }
  }
  unsent();
})();
