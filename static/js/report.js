/* The daily report page. Its counts are what the instance holds, so this gate's entries of the
 * report's day still waiting on this phone are not in them: the page says so, and a zero report
 * (which would tell the roll-call nobody came) cannot be sent until they are. Once they are
 * sent, the page asks the instance for its counts again, keeping what the volunteer typed. */
(function () {
  "use strict";
  const O = self.FieldOutbox;
  if (!O) return;
  let before = 0;
  // The name and remarks typed, across the counts' reload, and the form they were taken from:
  // put back only into the form that replaced it (a check that runs before the new counts
  // arrive, on another message of the outbox, leaves them for it).
  let typed = null;

  async function check() {
    const form = document.querySelector("#gate-report form");
    const note = document.querySelector("[data-report-waiting]");
    if (!form || !note) return;
    if (typed && typed.from !== form) {
      for (const [name, value] of Object.entries(typed.values)) form.elements[name].value = value;
      typed = null;
    }
    const site = form.elements.site_id.value;
    const day = form.elements.day.value;
    let waiting;
    let needsEnrol;
    try {
      // Held ones too: set aside on this phone until the instance can store them, they are
      // not in its counts either (refused and expired ones never will be).
      [waiting, needsEnrol] = await Promise.all([O.unsentRecords(), O.getMeta("needs_enrol")]);
    } catch (_) {
      return; // no IndexedDB: nothing can be waiting here
    }
    const n = waiting.filter((r) => r.kind === "entry" && r.data.site_id === site
      && FieldDays.day(r.recorded_at, note.dataset.tz) === day).length;
    note.textContent = note.dataset.template.replace("{n}", () => String(n));
    note.hidden = n === 0;
    // Unless they cannot be sent from this phone until it is enrolled again: then the note is
    // all the page can do.
    form.querySelector("button.report-submit").disabled =
      n > 0 && !needsEnrol && form.elements.zero.value === "true";
    if (before > 0 && n === 0 && self.htmx) {
      typed = {
        from: form,
        values: { reporter: form.elements.reporter.value, remarks: form.elements.remarks.value },
      };
      htmx.ajax("GET", location.pathname + location.search, { target: "#gate-report", swap: "outerHTML" });
    }
    before = n;
  }

  document.addEventListener("htmx:afterSwap", check);
  try {
    new BroadcastChannel(O.CHANNEL).onmessage = check;
  } catch (_) { /* the timer keeps it current */ }
  setInterval(check, 3000);
  check();
})();
