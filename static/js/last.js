/* The gate's last entries (#gate .last-entries) as they are now, for a page the service worker
 * may have answered with the copy it kept.
 *
 * The list is asked for again when the page may be a kept copy (fieldapp:kept, pwa.js) and when
 * the network comes back. Its answer renews the form's CSRF token (the kept one may be of a
 * lost session) and, when the site's code changed since the page was kept (X-Fieldapp-Gate),
 * opens the new code's page unless something is typed. Loaded by gate.js after outbox.js.
 */
(function () {
  "use strict";
  const source = document.querySelector("[data-last-url]");
  if (!source) return;

  const section = () => document.querySelector("#gate .last-entries");

  /* The list as it is now, from the instance; without an answer, the list stays as it is.
   * Asked for while an answer is on its way: asked again after. */
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
        const token = t.content.getElementById("csrf_token");
        const mine = document.getElementById("csrf_token");
        if (token && mine) mine.value = token.value;
        follow(res.headers.get("X-Fieldapp-Gate"));
      })
      .catch(() => { /* offline: the kept list stays */ })
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

  document.body.addEventListener("fieldapp:kept", refresh);
  window.addEventListener("online", refresh);
})();
