/* Passes at the gate: the camera (scanner.js) reads a card or a visitor's screen and the form
 * is filled (gate.js), so what is left is the temperature and "save".
 *
 * - A resident's card (fieldapp:pass:<token>): the person is found in the roster this phone
 *   keeps (roster.js), offline too. A reissued card's old token, or another site's, is found
 *   nowhere: the page says so and fills nothing.
 * - A visitor's pass (fieldapp:visit:<site id>:<registration uuid>): their registration is asked
 *   of the instance; the entry keeps the link to it. Offline, only the link is kept and the
 *   volunteer types the name.
 *
 * FieldPasses.scanned(text) is what the camera calls with a decoded text; tests call it too.
 * After a save the camera comes back by itself for the next person, if the last one came by
 * scan, until "stop".
 */
(function () {
  "use strict";
  const root = document.getElementById("pass-scanner");
  if (!root || !self.FieldScanner || !self.FieldGate) return;
  const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
  const LOOKUP_TIMEOUT_MS = 6000;
  const note = root.querySelector("[data-scan-note]");
  let again = false; // the last person came by scan: the camera returns after the save

  function t(key, vars) {
    const text = root.dataset["t" + key] || "";
    return text.replace(/\{(\w+)\}/g, (_, k) => (vars && k in vars ? vars[k] : ""));
  }

  /* A line under the scan button: bad (red, the form is untouched) or a remark. */
  function say(text, bad) {
    note.textContent = text || "";
    note.classList.toggle("flash-error", !!bad);
    note.hidden = !text;
    if (text && bad) note.scrollIntoView({ block: "nearest" });
  }

  // The code of the person just saved: still in front of the camera when it comes back for the
  // next one, it is not read again for a while (a second entry for them by mistake).
  const SAME_CODE_MS = 10000;
  let lastCode = "";
  let savedAt = 0;

  const scanner = FieldScanner.attach(root, (text) => {
    if (text === lastCode && Date.now() - savedAt < SAME_CODE_MS) return false;
    lastCode = text;
    savedAt = 0;
    scanned(text);
    return true; // done with the camera until the next person
  });

  // Each function below is given the scan's turn (FieldGate.choose): after a wait (the roster,
  // a lookup), a choice the volunteer made meanwhile wins, and the scan fills and says nothing.
  async function resident(token, turn) {
    await FieldRoster.loaded;
    let person = FieldRoster.byPass(token);
    if (!person && navigator.onLine !== false) {
      await FieldRoster.refresh(); // a card printed since this phone's copy of the roster
      person = FieldRoster.byPass(token);
    }
    if (!FieldGate.latest(turn)) return false;
    if (!person) {
      say(FieldRoster.ready() ? t("Revoked") : t("NoRoster"), true);
      return false;
    }
    FieldGate.pick(person, turn);
    say("");
    return true;
  }

  async function visitor(rest, turn) {
    const [siteId, uuid] = rest.split(":");
    if (!uuid || !UUID.test(uuid)) {
      say(t("Unknown"), true);
      return false;
    }
    if (siteId !== root.dataset.siteId) {
      say(t("OtherSite"), true);
      return false;
    }
    let res;
    try {
      res = await FieldOutbox.fetchWithTimeout(root.dataset.registrations + uuid,
        { credentials: "same-origin", cache: "no-store" }, LOOKUP_TIMEOUT_MS);
    } catch (_) {
      res = null; // offline, or too slow: keep the link, type the rest
    }
    let body = {};
    if (res && res.status < 500) {
      try { body = await res.json(); } catch (_) { /* an answer that is not ours */ }
    }
    if (!FieldGate.latest(turn)) return false; // someone else was chosen while it was asked
    // A captive portal's page answering in the instance's place (a station's or a hotel's
    // Wi-Fi: 200, its login page), or anything but this registration, is no answer: taken for
    // one, it lost the entry's link and the visitor was "never checked at the gate".
    const ours = res && res.headers.get("X-Fieldapp") === "1";
    if (!res || res.status >= 500 || !ours || (res.ok && body.uuid !== uuid)) {
      FieldGate.pickVisitor({ uuid }, turn);
      say(t("VisitorOffline"), true);
      return true;
    }
    if (!res.ok) {
      say(body.error || t("Unknown"), true);
      return false;
    }
    FieldGate.pickVisitor(body, turn);
    say(body.checked && body.checked.length ? t("Checked", { when: body.checked.join("、") }) : "");
    return true;
  }

  /* A decoded QR code: fill the form, or say why not (and fill nothing). */
  async function scanned(text) {
    text = String(text || "").trim();
    again = scanner.running(); // the volunteer works with the camera on: it comes back
    scanner.stop();
    const turn = FieldGate.choose();
    const pass = root.dataset.passPrefix;
    const visit = root.dataset.visitPrefix;
    if (text.startsWith(pass)) return resident(text.slice(pass.length), turn);
    if (text.startsWith(visit)) return visitor(text.slice(visit.length), turn);
    say(/\/s\/[^/?#]+\/?$/.test(text) ? t("Poster") : t("Unknown"), true);
    return false;
  }

  root.querySelector("[data-scan-stop]").addEventListener("click", () => { again = false; });
  root.querySelector("[data-scan-start]").addEventListener("click", () => say(""));
  // A person picked from the search: the camera waits until it is asked for again.
  document.addEventListener("click", (event) => {
    if (event.target.closest && event.target.closest("a.person")) again = false;
  });

  // Saved (online: the fresh form came with the confirmation; offline: the outbox kept it):
  // the next person in the queue shows their card.
  async function next() {
    savedAt = Date.now();
    say("");
    // Someone picked while the save was on its way (a card scanned, a match tapped) is in the
    // fresh form already (gate.js): the camera comes back after their save, for the one after.
    const f = document.getElementById("entry-form");
    if (f && ((f.elements.roster_id && f.elements.roster_id.value)
      || (f.elements.registration_uuid && f.elements.registration_uuid.value))) return;
    if (again && !(await scanner.start(true))) again = false;
  }
  document.addEventListener("gate-swapped", () => {
    const saved = document.getElementById("gate-saved");
    if (saved && !saved.hidden) next();
  });
  document.addEventListener("outbox-form-fresh", next);

  self.FieldPasses = { scanned, scanner };
})();
