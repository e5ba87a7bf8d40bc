// Gate form helpers. The form works without this file; with it: fever shown as it is typed,
// the device's time of recording, roster matches that fill the form and fold it to what is
// left to do, the direction and the volunteer remembered by this phone, and after each save
// the confirmation on the screen and a clean form for the next person.
(function () {
  "use strict";

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

  // Capture phase: runs before htmx (or the offline outbox) reads the form, and after
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
    var fill = { name: link.dataset.name, phone: link.dataset.phone, destination: link.dataset.unit };
    Object.keys(fill).forEach(function (key) {
      if (f.elements[key]) f.elements[key].value = fill[key] || "";
    });
    var type = f.querySelector('input[name=person_type][value="' + link.dataset.personType + '"]');
    if (type) type.checked = true;
    var detail = [type ? labelOf(type) : "", link.dataset.unit].concat(
      [].map.call(link.querySelectorAll(".muted"), function (el) { return el.textContent; }));
    fold(f, { name: link.dataset.name, detail: detail.filter(Boolean).join(" · ") });
    var results = document.getElementById("roster-results");
    if (results) results.innerHTML = "";
    var search = document.getElementById("roster-q");
    if (search) search.value = "";
    prefill(f);
    var temperature = f.elements.temperature;
    if (temperature) {
      // The form from its top: the direction, the person, the temperature; save stays below.
      f.scrollIntoView({ block: "start" });
      var box = temperature.getBoundingClientRect();
      if (box.bottom > window.innerHeight - 80) temperature.scrollIntoView({ block: "center" });
      temperature.focus({ preventScroll: true });
    }
  });

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

  function showSaved(shown) {
    if (shown && shown.scrollIntoView) shown.scrollIntoView({ block: "start" });
  }

  // After saving, the answer replaces the form the volunteer tapped: show the first error
  // beside its field, or else the confirmation at the top.
  function showOutcome(event) {
    if (!event.detail || !event.detail.target || event.detail.target.id !== "gate") return;
    submitted = {}; // answered (an offline save's outbox-saved comes before this swap)
    var problem = document.querySelector("#gate .field-error, #gate .errors");
    if (problem) {
      problem.scrollIntoView({ block: "center" });
      return;
    }
    var saved = document.getElementById("gate-saved");
    showSaved(saved && !saved.hidden ? saved : document.getElementById("gate"));
  }

  // The service worker kept the entry on this phone (status.js has given a fresh form): say
  // whom, as an online save does, that it waits on the phone, and clean the form.
  document.addEventListener("outbox-form-fresh", function (event) {
    var f = form();
    if (!f || event.target !== f) return;
    var uuid = event.detail && event.detail.uuid;
    var said = submitted[uuid];
    delete submitted[uuid];
    clearErrors(f);
    fold(f, null);
    setUp();
    var box = document.getElementById("gate-saved");
    if (!box || !said) return;
    var template = said.action ? box.dataset.tSavedFever : box.dataset.tSaved;
    box.querySelector("[data-gate-saved-text]").textContent = template.replace(
      /\{(\w+)\}/g, function (_, k) { return k in said ? said[k] : ""; });
    box.classList.toggle("flash-error", !!said.action);
    box.querySelector("[data-outbox-note]").hidden = false;
    box.hidden = false;
    showSaved(box);
  });

  document.addEventListener("DOMContentLoaded", setUp);
  document.addEventListener("htmx:afterSwap", setUp);
  // At once with the swap (not after htmx's settle delay), so no frame shows the fresh form
  // with the confirmation off the screen.
  document.addEventListener("htmx:afterSwap", showOutcome);
})();
