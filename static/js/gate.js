// Gate form helpers. The form works without this file; with it: fever shown as it is typed,
// the device's time of recording, roster matches that fill the form and fold it to what is
// left to do, the direction and the volunteer remembered by this phone, and after each save
// the confirmation on the screen and a clean form for the next person.
//
// It sends the form itself (no htmx on the gate page): the answer's fresh #gate replaces the
// old one, or the service worker's "kept on this phone" (HX-Trigger: outbox-saved) leaves it
// and cleans the form. Only rules.js and this file come with the page; the status line,
// the outbox's sending, the last entries as they are now (last.js), the worker's registration
// and the roster (data-later) are loaded once the form is usable, so the page's first wave of
// requests is what the form needs.
(function () {
  "use strict";

  var later = (document.currentScript && document.currentScript.dataset.later) || "";

  var VOLUNTEER_KEY = "fieldapp.volunteer";
  var DIRECTION_KEY = "fieldapp.direction";
  // What each save waiting for the service worker's answer said, by record id (outbox-saved).
  var submitted = {};

  function form() { return document.getElementById("entry-form"); }

  function remembered(key) {
    try { return localStorage.getItem(key) || ""; } catch (e) { return ""; } // private mode
  }

  function remember(key, value) {
    try { localStorage.setItem(key, value); } catch (e) { /* private mode: typed each time */ }
  }

  // A fever by the form's own rules (rules.js reads the reading as the instance does).
  function reading(f) {
    var rules = self.FieldRules && FieldRules.rulesOf(f);
    var input = f.elements.temperature;
    if (!rules || !input) return null;
    var t = FieldRules.parseTemperature(input.value, rules);
    if (t === null || t < rules.temperature.min || t > rules.temperature.max) return null;
    return { t: t, fever: t >= rules.fever_at };
  }

  function isFever(f) {
    var r = reading(f);
    return !!r && r.fever;
  }

  // Show the fever in red and ask what was done only when the reading is a fever.
  function showFever() {
    var f = form();
    if (!f) return;
    var fever = isFever(f);
    var box = f.querySelector(".field.temperature");
    var note = f.querySelector(".fever-note");
    var actions = f.querySelector(".fever-action");
    if (box) box.classList.toggle("fever", fever);
    if (note) note.hidden = !fever;
    if (actions) {
      actions.classList.toggle("fever", fever);
      // keep it visible when the server flagged it (an error beside it)
      actions.hidden = !fever && !actions.classList.contains("field-error");
    }
  }

  // "Where?" matters only after a yes; keep it shown when the server flagged it.
  function showTravelWhere() {
    var f = form();
    var box = f && f.querySelector(".travel-where");
    if (!box) return;
    var yes = f.querySelector("input[name=travel][value=true]");
    box.hidden = !(yes && yes.checked) && !box.classList.contains("field-error");
  }

  // The volunteer's direction and name, kept by this phone, in a form that has none yet.
  function prefill(f) {
    var volunteer = f.elements.volunteer;
    if (volunteer && !volunteer.value) volunteer.value = remembered(VOLUNTEER_KEY);
    if (!f.querySelector("input[name=direction]:checked")) {
      var dir = f.querySelector('input[name=direction][value="' + remembered(DIRECTION_KEY) + '"]');
      if (dir) dir.checked = true;
    }
  }

  // The roster person's card, and the fields it stands for folded away (CSS: .is-known).
  function fold(f, person) {
    var card = f.querySelector("[data-known]");
    if (!card) return;
    if (!person) {
      f.classList.remove("is-known", "is-open");
      card.hidden = true;
      // A fresh form names nobody (a hidden input's value survives form.reset()).
      set(f, "roster_id", "");
      set(f, "registration_uuid", "");
      return;
    }
    card.querySelector("[data-known-name]").textContent = person.name;
    card.querySelector("[data-known-detail]").textContent = person.detail;
    card.hidden = false;
    f.classList.add("is-known");
    f.classList.remove("is-open");
    card.querySelector("[data-known-more]").setAttribute("aria-expanded", "false");
    // The volunteer's own name folds away only once it is known.
    var volunteer = f.querySelector(".field.volunteer");
    if (volunteer) volunteer.classList.toggle("is-empty", !f.elements.volunteer.value);
  }

  function setUp() {
    var f = form();
    if (!f) return;
    prefill(f);
    showFever();
    showTravelWhere();
  }

  document.addEventListener("input", function (event) {
    if (event.target.name === "temperature") showFever();
  });
  document.addEventListener("change", function (event) {
    var f = form();
    if (!f || event.target.form !== f) return;
    if (event.target.name === "travel") showTravelWhere();
    if (event.target.name === "direction") remember(DIRECTION_KEY, event.target.value);
    if (event.target.name === "volunteer") remember(VOLUNTEER_KEY, event.target.value.trim());
  });

  // Capture phase: runs before the save below reads the form, and after
  // rules.js, which stops a form that breaks a rule.
  document.addEventListener("submit", function (event) {
    var f = event.target;
    if (!f.matches || !f.matches("form[data-outbox-kind=entry]")) return;
    if (f.elements.volunteer) remember(VOLUNTEER_KEY, f.elements.volunteer.value.trim());
    var dir = f.querySelector("input[name=direction]:checked");
    if (dir) remember(DIRECTION_KEY, dir.value);
    var action = f.querySelector("input[name=fever_action]:checked");
    var r = reading(f);
    submitted[f.elements.uuid.value] = {
      name: f.elements.name.value.trim(),
      direction: dir ? labelOf(dir) : "",
      t: r ? r.t.toFixed(1) : f.elements.temperature.value.trim(),
      action: r && r.fever && action ? labelOf(action) : "",
    };
  }, true);

  function labelOf(input) {
    var label = input.closest("label");
    return label ? label.textContent.trim() : input.value;
  }

  // Tapping a roster match fills the form; what is left (temperature, save) is on the screen.
  document.addEventListener("click", function (event) {
    var f = form();
    var more = event.target.closest && event.target.closest("[data-known-more]");
    if (more && f) {
      var open = !f.classList.contains("is-open");
      f.classList.toggle("is-open", open);
      more.setAttribute("aria-expanded", String(open));
      return;
    }
    var link = event.target.closest && event.target.closest("a.person");
    if (!link || !f) return;
    event.preventDefault();
    pick({
      id: link.dataset.id, name: link.dataset.name, phone: link.dataset.phone,
      unit: link.dataset.unit, person_type: link.dataset.personType,
    });
  });

  function set(f, name, value) {
    if (f.elements[name]) f.elements[name].value = value || "";
  }

  function check(f, name, value) {
    var input = f.querySelector("input[name=" + name + '][value="' + value + '"]');
    if (input) input.checked = true;
    return input;
  }

  function maskPhone(phone) {
    return phone && phone.length === 11 ? phone.slice(0, 3) + "****" + phone.slice(7) : phone || "";
  }

  // The form from its top (the direction, the person, the temperature; save stays below), the
  // search emptied, the temperature focused.
  function ready(f, focus) {
    var results = document.getElementById("roster-results");
    if (results) results.innerHTML = "";
    var search = document.getElementById("roster-q");
    if (search) search.value = "";
    prefill(f);
    showFever();
    showTravelWhere();
    var field = f.elements[focus];
    if (field) {
      f.scrollIntoView({ block: "start" });
      var box = field.getBoundingClientRect();
      if (box.bottom > window.innerHeight - 80) field.scrollIntoView({ block: "center" });
      field.focus({ preventScroll: true });
    }
  }

  // A person picked (a match tapped, a pass scanned) while a save is on its way: the form
  // still shows, and the save sends, the person before; the save's answer brings a fresh form
  // (or, kept on the phone, resets it), which would silently drop the pick, or keep only the
  // part of it the reset leaves (a name without its roster link). So the pick waits for that
  // fresh form and fills it; a save that fails leaves the form as typed and drops the pick
  // (the volunteer saves that person again, then picks the next one again).
  var pending = null;
  function saving() {
    var f = form();
    return !!f && f.getAttribute("aria-busy") === "true";
  }
  function whenSaved(fill, what) {
    if (!saving()) return fill(what);
    pending = { fill: fill, what: what };
  }
  // The save's fresh form is in place (an online answer's, or the outbox's): fill in a pick
  // that waited for it.
  function pickPending() {
    var p = pending;
    pending = null;
    if (p) p.fill(p.what);
  }

  // The volunteer's choices of a person, in the order they were made (a match tapped, a pass
  // scanned). A pass is looked up before it fills the form (a visitor's registration is asked
  // of the instance: seconds on one bar), and the volunteer may choose someone else meanwhile:
  // as with a pick during a save, the later choice wins. So a scan takes a turn when it is
  // made (choose()), and what its lookup brings fills the form only if no choice came after
  // it (latest()); else it is dropped.
  var choices = 0;
  function choose() { return ++choices; }
  function latest(turn) { return turn === choices; }
  // The name or the phone typed by hand is a choice too: the volunteer says who this is (the
  // scan's lookup was too slow, or it is someone else), and a lookup that answers after it
  // fills nothing. (The temperature, typed while the lookup is on its way, is not a choice of
  // a person: the lookup still fills the form around it.)
  document.addEventListener("input", function (event) {
    var f = form();
    var name = event.target.name;
    if (f && event.target.form === f && (name === "name" || name === "phone")) choose();
  });

  /* A choice that fills the form with fill(what) (after a save under way), in its turn: the
     scan's, or a new one when none is given (a match tapped). False, filling nothing, when a
     later choice was made since that scan. */
  function choice(fill) {
    return function (what, turn) {
      if (turn === undefined) turn = choose();
      if (!latest(turn)) return false;
      whenSaved(fill, what);
      return true;
    };
  }

  /* A roster person (a match tapped, or their pass scanned): fill the form and fold it. */
  var pick = choice(pickNow);
  function pickNow(person) {
    var f = form();
    if (!f) return;
    set(f, "name", person.name);
    set(f, "phone", person.phone);
    set(f, "destination", person.unit);
    set(f, "roster_id", person.id);
    set(f, "registration_uuid", "");
    var type = check(f, "person_type", person.person_type);
    var detail = [type ? labelOf(type) : "", person.unit, maskPhone(person.phone)];
    fold(f, { name: person.name, detail: detail.filter(Boolean).join(" · ") });
    ready(f, "temperature");
  }

  /* A visitor's pass scanned: what they registered fills the form, the link to it is kept.
     Without their registration (offline) only the link and "visitor": the name is typed. */
  var pickVisitor = choice(pickVisitorNow);
  function pickVisitorNow(reg) {
    var f = form();
    if (!f) return;
    fold(f, null);
    ["name", "phone", "destination", "travel_where"].forEach(function (k) { set(f, k, reg[k]); });
    set(f, "roster_id", "");
    set(f, "registration_uuid", reg.uuid);
    var type = check(f, "person_type", "visitor");
    if (reg.name === undefined) {
      ready(f, "name");
      return;
    }
    check(f, "health_code", reg.health_code);
    check(f, "travel", reg.travel ? "true" : "false");
    var code = f.querySelector("input[name=health_code]:checked");
    var detail = [type ? labelOf(type) : "", code ? labelOf(code) : "", reg.time, reg.destination];
    fold(f, { name: reg.name, detail: detail.filter(Boolean).join(" · ") });
    ready(f, "temperature");
  }

  // ready: the form's handlers are attached (bench/page_weight.py's "usable").
  // sentAt: when the instance itself last stored a save (status.js reads it if it came later).
  self.FieldGate = {
    pick: pick, pickVisitor: pickVisitor, choose: choose, latest: latest, tokenOf: tokenOf,
    ready: false, sentAt: 0,
  };

  // Errors of an earlier attempt, the server's or the phone's: a fresh form shows none.
  function clearErrors(f) {
    if (self.FieldRules) FieldRules.show(f, {});
    f.querySelectorAll(".error, .errors").forEach(function (el) { el.remove(); });
    f.querySelectorAll(".field-error").forEach(function (el) { el.classList.remove("field-error"); });
    f.querySelectorAll("[aria-invalid]").forEach(function (el) {
      el.removeAttribute("aria-invalid");
      el.removeAttribute("aria-describedby");
    });
  }

  // The confirmation at the top of the screen; above it the "scan a pass" button when both fit,
  // so the next person's card is one tap away without scrolling back up.
  function showSaved(shown) {
    if (!shown || !shown.scrollIntoView) return;
    var scan = document.getElementById("pass-scanner");
    if (scan) {
      window.scrollBy(0, Math.floor(scan.getBoundingClientRect().top) - 4);
      var box = shown.getBoundingClientRect();
      if (box.top >= 0 && box.bottom <= window.innerHeight) return;
    }
    shown.scrollIntoView({ block: "start" });
  }

  // After saving, the answer replaces the form the volunteer tapped: show the first error
  // beside its field, or else the confirmation at the top.
  function showOutcome() {
    submitted = {}; // answered (an offline save's outbox-saved comes before this swap)
    var problem = document.querySelector("#gate .field-error, #gate .errors");
    if (problem) {
      problem.scrollIntoView({ block: "center" });
      return;
    }
    var saved = document.getElementById("gate-saved");
    if (saved && !saved.hidden) justSaved(form());
    showSaved(saved && !saved.hidden ? saved : document.getElementById("gate"));
  }

  // A double tap on "save" (150–400 ms apart): when the first tap's answer comes before the
  // second, the second lands on the fresh, empty form. Sent, it would turn every field red and
  // scroll the confirmation away, and the volunteer, taking the save for failed, would type
  // the person again (counted twice). So the fresh form, while it is still as the save left it
  // (nothing typed, no roster person picked), takes no submit for SAVED_GUARD_MS: the tap is
  // ignored and the confirmation stays in view. (On the window, capture phase: before
  // rules.js, on the document, shows any error.)
  var SAVED_GUARD_MS = 1500;
  var lastSave = { at: 0, form: null };
  function stateOf(f) {
    var data = new FormData(f);
    data.delete("csrf_token"); // renewed with the last entries (last.js), not by the volunteer
    return new URLSearchParams(data).toString();
  }
  function justSaved(f) { lastSave = { at: Date.now(), form: f ? stateOf(f) : null }; }

  // The form as it was when it was last fresh (the page opened, or a save answered): a page
  // may be left for another (last.js: the site's new code) only while nothing is typed in it.
  var freshState = null;
  function markFresh() {
    var f = form();
    freshState = f ? stateOf(f) : null;
  }
  FieldGate.untouched = function () {
    var f = form();
    var search = document.getElementById("roster-q");
    return !!f && !sending && !f.inert && stateOf(f) === freshState && !(search && search.value);
  };
  window.addEventListener("submit", function (event) {
    var f = event.target;
    if (f.id !== "entry-form" || Date.now() - lastSave.at > SAVED_GUARD_MS) return;
    if (stateOf(f) !== lastSave.form) return;
    event.preventDefault();
    event.stopImmediatePropagation();
    var saved = document.getElementById("gate-saved");
    if (saved && !saved.hidden) showSaved(saved);
  }, true);

  // A page the worker kept carries the record id it had when kept: never reuse it.
  function freshIds(f) {
    if (f.elements.uuid) f.elements.uuid.value = self.crypto.randomUUID();
    if (f.elements.recorded_at) f.elements.recorded_at.value = "";
  }
  if (form()) freshIds(form());

  // While a save is on its way (a few seconds at most with one bar) the form takes no typing:
  // its answer brings a fresh form, which would silently drop what was typed meanwhile. The
  // save button, and the box at the top in place of the previous person's confirmation, say
  // "Saving…" (a page kept before that text was added only clears the box).
  function busy(f, on) {
    f.inert = on;
    if (on) f.setAttribute("aria-busy", "true");
    else f.removeAttribute("aria-busy");
    var saving = f.dataset.tSaving;
    var box = document.getElementById("gate-saved");
    var button = f.querySelector("button.save");
    if (on) {
      if (box) {
        box.querySelector("[data-gate-saved-text]").textContent = saving || "";
        box.querySelector("[data-outbox-note]").hidden = true;
        box.classList.remove("flash-error");
        box.hidden = !saving;
        box.setAttribute("data-saving", "");
      }
      if (button && saving) {
        button.dataset.label = button.textContent;
        button.textContent = saving;
      }
      return;
    }
    if (box && box.hasAttribute("data-saving")) {
      box.hidden = true;
      box.removeAttribute("data-saving");
    }
    if (button && button.dataset.label) {
      button.textContent = button.dataset.label;
      delete button.dataset.label;
    }
  }

  // The answer to a save: the service worker's events (HX-Trigger: outbox-saved, or
  // outbox-invalid), and unless it says there is nothing to swap (HX-Reswap), the fresh #gate.
  // False if it is neither (a page that is not the instance's: a captive portal's).
  function answered(f, res, html) {
    var events = {};
    try { events = JSON.parse(res.headers.get("HX-Trigger") || "{}"); } catch (e) { /* none */ }
    Object.keys(events).forEach(function (name) {
      f.dispatchEvent(new CustomEvent(name, { bubbles: true, detail: events[name] }));
    });
    if (res.headers.get("HX-Reswap") === "none") {
      pending = null; // kept (outbox-form-fresh filled it in), or refused: the form stays
      return true;
    }
    var t = document.createElement("template");
    t.innerHTML = html;
    var fresh = t.content.getElementById("gate");
    var old = document.getElementById("gate");
    if (!fresh || !old) return false;
    var search = typedSearch();
    old.replaceWith(fresh);
    if (search) search.restore();
    if (res.headers.get("X-Outbox-Stored")) {
      // The instance itself stored it: for this phone that is a send, as a push is.
      FieldGate.sentAt = Date.now();
      document.dispatchEvent(new CustomEvent("outbox-stored"));
    }
    setUp();
    markFresh();
    showOutcome();
    var saved = document.getElementById("gate-saved");
    if (saved && !saved.hidden && !fresh.querySelector(".field-error, .errors")) pickPending();
    pending = null;
    fresh.dispatchEvent(new CustomEvent("gate-swapped", { bubbles: true }));
    return true;
  }

  // The roster search typed while the save was on its way (it is outside the form, which takes
  // no typing then): the answer's fresh #gate has an empty one, which would drop the typing, its
  // matches, and the keyboard. Null when it is as it was at the tap.
  var searchAtTap = "";
  function typedSearch() {
    var input = document.getElementById("roster-q");
    if (!input || input.value === searchAtTap) return null;
    var results = document.getElementById("roster-results");
    var focused = document.activeElement === input;
    var from = input.selectionStart;
    var to = input.selectionEnd;
    return {
      restore: function () {
        var fresh = document.getElementById("roster-q");
        if (!fresh) return;
        fresh.value = input.value;
        var list = document.getElementById("roster-results");
        if (list && results) list.replaceWith(results);
        if (!focused) return;
        fresh.focus({ preventScroll: true });
        try { fresh.setSelectionRange(from, to); } catch (e) { /* no caret to put back */ }
      },
    };
  }

  // Nothing was saved (an error page answered, or no answer came and the phone cannot keep
  // the entry): the form stays as it was typed, and says why above it.
  function notSaved(f, text) {
    pending = null; // the form stays as typed: a pick meanwhile is not put over it
    var box = f.querySelector("[data-not-saved]");
    if (!box) {
      box = document.createElement("div");
      box.className = "errors";
      box.setAttribute("role", "alert");
      box.setAttribute("data-not-saved", "");
      f.insertBefore(box, f.firstChild);
    }
    box.textContent = text;
    box.scrollIntoView({ block: "nearest" });
  }

  // (A page kept before these texts were added has none: the status alone, or the body's.)
  function errorText(status) {
    return (document.body.dataset.tNotSaved || "HTTP {status}")
      .replace("{status}", function () { return status; });
  }

  function notKeptText(f) {
    return f.dataset.tNotKept || document.body.dataset.tNotSent || "";
  }

  // The form's CSRF token in an answer of the instance (its HTML, or a template's content it
  // was parsed into), or "": a save's refusal (below) and the last entries (last.js) renew it.
  function tokenOf(html) {
    var root = html;
    if (typeof html === "string") {
      var t = document.createElement("template");
      t.innerHTML = html;
      root = t.content;
    }
    var input = root.getElementById("csrf_token");
    return input ? input.value : "";
  }

  // The token of the form in a refusal that renewed it (X-Fieldapp-Token: the browser lost
  // the session the page's token was made for), or "".
  function renewedToken(res, html) {
    return res.headers.get("X-Fieldapp-Token") === "renewed" ? tokenOf(html) : "";
  }

  // The save: to the instance, or the service worker's outbox when the network fails it.
  // ("HX-Request": the fragment, not the whole page, as for htmx.) A second tap while one is
  // on its way is dropped. The worker, in control, gives the save its time limit and keeps the
  // entry on the phone when no answer comes within it; with no worker in control the page does
  // the same, by outbox.js (its fetchWithTimeout and the worker's SUBMIT_TIMEOUT_MS). Where the
  // phone cannot keep it (private mode), the form says that it was not saved and stays as
  // typed: never a wait without end, never the browser's "no internet" page.
  var sending = false;
  document.addEventListener("submit", function (event) {
    var f = event.target;
    if (event.defaultPrevented || f.id !== "entry-form") return;
    event.preventDefault();
    if (sending) return;
    var search = document.getElementById("roster-q");
    searchAtTap = search ? search.value : "";
    // When the person passed: this tap, the first one (a retry keeps the same content). It is
    // stamped by FieldOutbox.recordedAt, the one place that stamps a record's time; this page
    // may save before it has loaded outbox.js (data-later), so the moment is kept until it is
    // here (see stamp below).
    var at = f.elements.recorded_at;
    var tapped = at && !at.value ? Date.now() : null;
    var boxes = Array.prototype.map.call(f.querySelectorAll("input[type=checkbox][name]"),
      function (i) { return i.name; }).filter(function (n, i, all) { return all.indexOf(n) === i; });
    var data = new FormData(f);
    var body = new URLSearchParams(data);
    var worker = navigator.serviceWorker && navigator.serviceWorker.controller;
    var renewed = false;
    sending = true;
    busy(f, true);

    function post() {
      var init = {
        method: "POST",
        body: body,
        credentials: "same-origin",
        headers: {
          "HX-Request": "true",
          "X-Outbox-Kind": f.dataset.outboxKind,
          "X-Outbox-Booleans": boxes.join(","),
          // This phone's clock as it sends: when it is wrong, the instance times the entry
          // by its own (fieldapp/records.py recorded_at), as it does a push's.
          "X-Fieldapp-Sent-At": new Date().toISOString(),
        },
      };
      if (worker) return fetch(f.action, init);
      return loadLater().then(function (outbox) {
        if (!outbox) throw new Error("outbox.js not loaded"); // no network to fetch it either
        return outbox.fetchWithTimeout(f.action, init, outbox.SUBMIT_TIMEOUT_MS);
      });
    }

    // The tap's moment, stamped, into the form and what is sent. Without outbox.js (it could
    // not be loaded) the entry goes unstamped, and is stamped where it arrives: by the
    // instance, or the service worker keeping it (outbox.js's fromFields), a moment later.
    function stamp() {
      if (tapped === null) return Promise.resolve();
      return loadLater().then(function (outbox) {
        if (outbox && !at.value) {
          at.value = outbox.recordedAt(tapped);
          data.set("recorded_at", at.value);
          body.set("recorded_at", at.value);
        }
        tapped = null;
      });
    }

    function attempt() {
      return post().then(function (res) {
        return res.text().then(function (html) {
          // Refused only for its token, which the answer renews: the same record again, once
          // (its uuid makes it one entry whatever happened to the first).
          var token = !renewed && renewedToken(res, html);
          if (token) {
            renewed = true;
            body.set("csrf_token", token);
            if (f.elements.csrf_token) f.elements.csrf_token.value = token;
            return attempt();
          }
          sending = false;
          // No worker answered for the instance (not in control yet, or the browser dropped
          // it): the page keeps the entry on the phone itself where the worker would have.
          if (!worker && (res.status === 401 || res.status >= 500) && self.FieldOutbox) {
            return keepHere(res.status === 401, errorText(res.status));
          }
          busy(f, false);
          if (!res.ok || !answered(f, res, html)) notSaved(f, errorText(res.status));
        });
      });
    }

    stamp().then(function () {
      noteSave(data);
      return attempt();
    }).catch(function () {
      // No answer: no network, or none within the time limit (no worker in control).
      sending = false;
      if (!worker && self.FieldOutbox) return keepHere(false, notKeptText(f));
      busy(f, false);
      notSaved(f, notKeptText(f));
    });

    function keepHere(needsEnrol, otherwise) {
      var record = FieldOutbox.fromForm(data, f.dataset.outboxKind, boxes);
      return FieldOutbox.add(record).then(function (waiting) {
        if (needsEnrol) FieldOutbox.setMeta("needs_enrol", true);
        f.dispatchEvent(new CustomEvent("outbox-saved",
          { bubbles: true, detail: { uuid: record.uuid, waiting: waiting, enrol: needsEnrol } }));
      }, function () {
        // No outbox on this phone (private mode): nothing saved, what was typed stays.
        busy(f, false);
        notSaved(f, otherwise);
      });
    }
  });

  // The service worker kept the entry on this phone: a fresh form (not a swap), then say
  // whom, as an online save does, that it waits on the phone.
  document.addEventListener("outbox-saved", function (event) {
    var f = form();
    if (!f || event.target !== f) return;
    busy(f, false);
    f.reset();
    freshIds(f);
    var first = f.querySelector("input:not([type=hidden]), select, textarea");
    if (first) first.focus({ preventScroll: true });
    f.dispatchEvent(new CustomEvent("outbox-form-fresh", { bubbles: true, detail: event.detail }));
  });

  document.addEventListener("outbox-form-fresh", function (event) {
    var f = form();
    if (!f || event.target !== f) return;
    var uuid = event.detail && event.detail.uuid;
    var said = submitted[uuid];
    delete submitted[uuid];
    clearErrors(f);
    fold(f, null);
    setUp();
    markFresh();
    var box = document.getElementById("gate-saved");
    if (!box || !said) return pickPending();
    var template = said.action ? box.dataset.tSavedFever : box.dataset.tSaved;
    box.querySelector("[data-gate-saved-text]").textContent = template.replace(
      /\{(\w+)\}/g, function (_, k) { return k in said ? said[k] : ""; });
    box.classList.toggle("flash-error", !!said.action);
    // It waits on the phone: for the network, or on a revoked phone for a new enrolment link.
    var note = box.querySelector("[data-outbox-note]");
    note.dataset.tLater = note.dataset.tLater || note.textContent;
    var enrol = event.detail && event.detail.enrol && note.dataset.tEnrol;
    note.textContent = enrol || note.dataset.tLater;
    note.hidden = false;
    box.hidden = false;
    justSaved(f);
    showSaved(box);
    pickPending();
  });

  // The page closed (the tab killed, the phone died) after a save was stored but before it
  // said so: opened again, the form is empty and says nothing, and the volunteer, not knowing
  // whether it was saved, may register the person twice. So each save's record id is noted on
  // the phone as it is sent (outbox.js's "meta", durable as the outbox is); and a page opened
  // within RECALL_MS after it, with no confirmation of its own, says it was saved once the
  // last entries (last.js) list that record: the instance's, or those that wait on this phone
  // ("kept on this phone"). A save listed in neither was not stored: nothing is said of it.
  var RECALL_MS = 10 * 60 * 1000;
  var recalled = false;
  function noteSave(data) {
    var O = self.FieldOutbox;
    if (!O || !O.setMeta) return; // not loaded (no network for it): nothing to recall by
    O.setMeta("last_save", { uuid: data.get("uuid"), site: data.get("site_id"), at: Date.now() })
      .catch(function () { /* no IndexedDB (private mode): nothing is kept to recall either */ });
  }
  function textOf(li, selector) {
    var el = li.querySelector(selector);
    return el ? el.textContent.trim() : "";
  }
  document.addEventListener("last-entries-drawn", function () {
    var O = self.FieldOutbox;
    var box = document.getElementById("gate-saved");
    var f = form();
    if (recalled || !O || !O.getMeta || !f || !f.elements.site_id) return;
    if (!box || !box.dataset.tSavedBefore) return; // a page kept before it could say this
    Promise.all([O.getMeta("last_save"), O.getMeta("needs_enrol")]).then(function (meta) {
      var last = meta[0];
      var age = last ? Date.now() - last.at : -1;
      // Shown only over nothing: not over a save's own confirmation, nor while one is sent.
      if (recalled || !box.hidden || saving() || !last || last.site !== f.elements.site_id.value
        || !(age >= 0 && age < RECALL_MS)) return;
      var uuid = CSS.escape(String(last.uuid));
      var li = document.querySelector('#gate .last-entries [data-uuid="' + uuid + '"], '
        + '#gate .last-entries [data-unsent="' + uuid + '"]');
      if (!li) return;
      recalled = true;
      var said = {
        time: textOf(li, ".when"), name: textOf(li, ".who"),
        direction: textOf(li, '[class*="dir-"]'), t: textOf(li, ".temp").replace(/\s*°C$/, ""),
      };
      box.querySelector("[data-gate-saved-text]").textContent = box.dataset.tSavedBefore.replace(
        /\{(\w+)\}/g, function (_, k) { return k in said ? said[k] : ""; });
      box.classList.toggle("flash-error", li.classList.contains("entry-fever"));
      var note = box.querySelector("[data-outbox-note]");
      note.dataset.tLater = note.dataset.tLater || note.textContent;
      note.textContent = (meta[1] && note.dataset.tEnrol) || note.dataset.tLater;
      note.hidden = !li.hasAttribute("data-unsent");
      box.hidden = false;
    }, function () { /* no IndexedDB: nothing was noted */ });
  });

  // The pass scanner (scanner.js, passes.js) is not part of the page's first download: the
  // first tap on "scan" loads it (from the service worker's copy, offline too) and starts the
  // camera; passes.js answers the taps after that. Where the browser cannot decode QR codes
  // itself, the decoder (jsQR) is fetched once the service worker has the page, so that it
  // keeps it: the first scan may be offline.
  var scannerLoading = null;
  function loadScript(src) {
    return new Promise(function (resolve, reject) {
      var s = document.createElement("script");
      s.src = src;
      s.onload = resolve;
      s.onerror = reject;
      document.head.appendChild(s);
    });
  }
  function loadScanner(root) {
    if (!scannerLoading) {
      var urls = (root.dataset.scripts || "").split(" ").filter(Boolean);
      scannerLoading = urls.reduce(function (p, url) {
        return p.then(function () { return loadScript(url); });
      }, Promise.resolve()).catch(function (err) { scannerLoading = null; throw err; });
    }
    return scannerLoading;
  }
  document.addEventListener("click", function (event) {
    var start = event.target.closest && event.target.closest("#pass-scanner [data-scan-start]");
    if (!start || self.FieldPasses) return;
    var root = document.getElementById("pass-scanner");
    loadScanner(root).then(function () {
      if (self.FieldPasses) FieldPasses.scanner.start();
    }, function () {
      var error = root.querySelector("[data-scan-error]");
      error.textContent = root.dataset.tNoCamera;
      error.hidden = false;
    });
  });
  function warmDecoder() {
    var root = document.getElementById("pass-scanner");
    if (!root || !root.dataset.jsqr || "BarcodeDetector" in self) return;
    var go = function () { fetch(root.dataset.jsqr, { credentials: "same-origin" }).catch(function () {}); };
    var soon = function () {
      if ("requestIdleCallback" in self) requestIdleCallback(go, { timeout: 5000 });
      else setTimeout(go, 2000);
    };
    var sw = navigator.serviceWorker;
    if (sw && !sw.controller) sw.addEventListener("controllerchange", soon, { once: true });
    else soon();
  }
  document.addEventListener("DOMContentLoaded", warmDecoder);

  // The rest of the phone's scripts, in order, once the form is usable: when the phone is
  // next idle (after the frame that shows the form), so they do not hold that frame back; or
  // at once when a save needs outbox.js before then. Resolves with FieldOutbox, or null when
  // it could not be loaded (no network: a later call asks again for what failed).
  var scripts = {};
  function loadLater() {
    var names = later.split(" ").filter(Boolean);
    // A page kept before last.js came does not name it: after outbox.js, by its plain name
    // (the service worker answers that with its current file), or its list would stay as kept.
    var last = /\/js\/last(\.[0-9a-f]{12})?\.js$/;
    if (names.length && !names.some(function (src) { return last.test(src); })) {
      names.splice(1, 0, "/static/js/last.js");
    }
    return Promise.all(names.map(function (src) {
      if (!scripts[src]) {
        scripts[src] = new Promise(function (resolve) {
          var s = document.createElement("script");
          s.src = src;
          s.async = false;
          s.onload = function () { resolve(true); };
          s.onerror = function () {
            delete scripts[src];
            s.remove();
            resolve(false);
          };
          document.head.appendChild(s);
        });
      }
      return scripts[src];
    })).then(function () { return self.FieldOutbox || null; });
  }

  document.addEventListener("DOMContentLoaded", function () {
    setUp();
    markFresh();
    FieldGate.ready = true;
    if ("requestIdleCallback" in self) requestIdleCallback(loadLater, { timeout: 1000 });
    else setTimeout(loadLater, 200);
  });
})();
