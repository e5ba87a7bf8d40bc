// The visitor's pass: the clock runs on the instance's time (the page says what it was when it
// was made), not the phone's, so setting the phone's clock does not change it; a screenshot of
// the pass shows a clock that has stopped.
(function () {
  "use strict";

  function start(pass) {
    if (!pass || pass.dataset.live) return;
    pass.dataset.live = "1";
    const clock = pass.querySelector("[data-pass-clock]");
    if (!clock) return;
    const offset = Number(pass.dataset.now) - Date.now();
    let format;
    try {
      format = new Intl.DateTimeFormat("zh-CN", {
        timeZone: pass.dataset.tz, hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23",
      });
    } catch (_) {
      format = new Intl.DateTimeFormat("zh-CN", { hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23" });
    }
    const tick = () => { clock.textContent = format.format(new Date(Date.now() + offset)); };
    tick();
    setInterval(tick, 250);
  }

  function all() { document.querySelectorAll("[data-pass]").forEach(start); }
  document.addEventListener("DOMContentLoaded", all);
  document.addEventListener("htmx:afterSwap", all);
})();
