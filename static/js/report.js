/* The daily report page. Its counts are what the instance holds, so this gate's entries still
 * waiting on this phone are not in them: the page says so, and a zero report (which would tell
 * the roll-call nobody came) cannot be sent until they are. Once they are sent, the page asks
 * the instance for its counts again. */
(function () {
  "use strict";
  const O = self.FieldOutbox;
  if (!O) return;
  let before = 0;

  async function check() {
    const form = document.querySelector("#gate-report form");
    const note = document.querySelector("[data-report-waiting]");
    if (!form || !note) return;
    const site = form.elements.site_id.value;
    let n;
    try {
      n = (await O.all("outbox")).filter((r) => r.kind === "entry" && r.data.site_id === site).length;
    } catch (_) {
      return; // no IndexedDB: nothing can be waiting here
    }
    note.textContent = note.dataset.template.replace("{n}", n);
    note.hidden = n === 0;
    form.querySelector("button.report-submit").disabled = n > 0 && form.elements.zero.value === "true";
    if (before > 0 && n === 0 && self.htmx) {
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
