/* A form htmx could not send (no network, the connection broke) or that the instance answered
 * with an error page: htmx shows nothing and leaves the form as it was. Say so above the form
 * (the words are the page's body's data-t-* attributes), until the next request. A GET is
 * left alone: nothing typed is at stake, and a page that polls asks again by itself. */
(function () {
  "use strict";

  function clear() {
    document.querySelectorAll("[data-not-sent]").forEach((p) => p.remove());
  }

  function say(event, text) {
    clear();
    // A page's own polling (the console's dashboard) has nothing typed to speak of: it asks
    // again by itself.
    const verb = (event.detail.requestConfig || {}).verb || "get";
    const elt = event.detail.elt;
    const where = elt && (elt.closest("form") || elt);
    if (verb === "get" || !where || !where.parentNode) return;
    const p = document.createElement("p");
    p.className = "flash flash-error";
    p.setAttribute("role", "alert");
    p.setAttribute("data-not-sent", "");
    p.textContent = text;
    where.parentNode.insertBefore(p, where);
    p.scrollIntoView({ block: "nearest" });
  }

  document.addEventListener("htmx:beforeRequest", clear);
  document.addEventListener("htmx:sendError", (event) => say(event, document.body.dataset.tNotSent));
  document.addEventListener("htmx:responseError", (event) =>
    say(event, document.body.dataset.tNotSaved.replace("{status}", () => event.detail.xhr.status)));
})();
