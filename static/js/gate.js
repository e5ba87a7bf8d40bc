// Gate form helpers. The form works without this file; with it: fever shown as it is typed,
// the device's time of recording, roster matches that fill the form, the volunteer remembered.
(function () {
  "use strict";

  var VOLUNTEER_KEY = "fieldapp.volunteer";

  function form() { return document.getElementById("entry-form"); }

  // A fever by the form's own rules (rules.js reads the reading as the instance does).
  function isFever(f) {
    var rules = self.FieldRules && FieldRules.rulesOf(f);
    var input = f.elements.temperature;
    if (!rules || !input) return false;
    var t = FieldRules.parseTemperature(input.value, rules);
    return t !== null && t >= rules.temperature.min && t <= rules.temperature.max && t >= rules.fever_at;
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

  function setUp() {
    var f = form();
    if (!f) return;
    var volunteer = f.elements.volunteer;
    if (volunteer && !volunteer.value) {
      try { volunteer.value = localStorage.getItem(VOLUNTEER_KEY) || ""; } catch (e) { /* private mode */ }
    }
    showFever();
    showTravelWhere();
  }

  document.addEventListener("input", function (event) {
    if (event.target.name === "temperature") showFever();
  });
  document.addEventListener("change", function (event) {
    if (event.target.name === "travel") showTravelWhere();
  });

  // Capture phase: runs before htmx (or the offline outbox) reads the form.
  document.addEventListener("submit", function (event) {
    var f = event.target;
    if (!f.matches || !f.matches("form[data-outbox-kind=entry]")) return;
    if (f.elements.volunteer) {
      try { localStorage.setItem(VOLUNTEER_KEY, f.elements.volunteer.value); } catch (e) { /* ignore */ }
    }
  }, true);

  // Tapping a roster match fills the form; only temperature and direction remain.
  document.addEventListener("click", function (event) {
    var link = event.target.closest && event.target.closest("a.person");
    var f = form();
    if (!link || !f) return;
    event.preventDefault();
    var fill = { name: link.dataset.name, phone: link.dataset.phone, destination: link.dataset.unit };
    Object.keys(fill).forEach(function (key) {
      if (f.elements[key]) f.elements[key].value = fill[key] || "";
    });
    var type = f.querySelector('input[name=person_type][value="' + link.dataset.personType + '"]');
    if (type) type.checked = true;
    var results = document.getElementById("roster-results");
    if (results) results.innerHTML = "";
    var search = document.getElementById("roster-q");
    if (search) search.value = "";
    if (f.elements.temperature) f.elements.temperature.focus();
  });

  // After saving, the answer replaces the form the volunteer tapped at the bottom of: show the
  // first error beside its field, or else the confirmation at the top.
  function showOutcome(event) {
    if (!event.detail || !event.detail.target || event.detail.target.id !== "gate") return;
    var problem = document.querySelector("#gate .field-error, #gate .errors");
    var shown = problem || document.querySelector("#gate .flash") || document.getElementById("gate");
    if (shown && shown.scrollIntoView) shown.scrollIntoView({ block: problem ? "center" : "start" });
  }

  document.addEventListener("DOMContentLoaded", setUp);
  document.addEventListener("htmx:afterSwap", setUp);
  document.addEventListener("htmx:afterSettle", showOutcome);
})();
