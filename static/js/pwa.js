/* The installable app: service worker registration, persistent storage, the iPhone hint. */
(function () {
  "use strict";
  const GATE_PAGE = /^\/s\/[^/]+\/?$/;

  if ("serviceWorker" in navigator) {
    // A page the worker answered is kept by it already (static/sw.js gatePage), and may be
    // that copy: what changed since follows (the gate's last entries: gate.js; the roster).
    // On the gate page this file comes after the form is usable (gate.js), maybe after load.
    if (navigator.serviceWorker.controller) {
      const kept = () => document.body.dispatchEvent(new Event("fieldapp:kept"));
      if (document.readyState === "complete") kept();
      else addEventListener("load", kept);
    }
    navigator.serviceWorker.register("/sw.js", { scope: "/" }).then(() => navigator.serviceWorker.ready)
      .then((reg) => {
        if (!reg.active) return;
        if (!navigator.serviceWorker.controller) reg.active.postMessage({ type: "claim" });
        // What the worker could not fetch when it was installed, on one bar of signal.
        reg.active.postMessage({ type: "fill-shell" });
        // A gate page must be kept for offline use: the page that installed the worker was not
        // seen by it, and on one bar the worker's copy can fail. Ask until it is kept. So must
        // today's campaign page it links to, which this phone may never have opened.
        if (GATE_PAGE.test(location.pathname)) {
          keep(reg, location.pathname, 12);
          const screening = document.querySelector(".gate-screening-link a");
          if (screening) keep(reg, screening.getAttribute("href"), 3);
        }
      })
      .catch(() => null);
  }

  function keep(reg, path, tries) {
    caches.match(path, { ignoreVary: true }).then((kept) => {
      if (kept || tries <= 0 || !reg.active) return;
      reg.active.postMessage({ type: "cache-page", url: path });
      setTimeout(() => keep(reg, path, tries - 1), 5000);
    }).catch(() => null);
  }

  if (self.FieldOutbox) self.FieldOutbox.refreshDevice();

  // Ask the browser not to evict the outbox under storage pressure.
  if (navigator.storage && navigator.storage.persist) {
    navigator.storage.persisted().then((done) => done || navigator.storage.persist()).catch(() => null);
  }

  // Safari deletes a site's storage after 7 days without a visit; a home-screen app is spared.
  const ios = /iphone|ipad|ipod/i.test(navigator.userAgent)
    || (navigator.platform === "MacIntel" && navigator.maxTouchPoints > 1);
  const standalone = navigator.standalone || window.matchMedia("(display-mode: standalone)").matches;
  const hint = document.querySelector("[data-ios-hint]");
  if (hint && ios && !standalone) hint.hidden = false;
})();
