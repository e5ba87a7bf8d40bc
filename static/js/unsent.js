/* A form htmx could not send (no network, the connection broke) or that the instance answered
 * with an error page: htmx shows nothing and leaves the form as it was. Say so above the form
 * (the words are the page's body's data-t-* attributes), until the next request. */
(function () {
  "use strict";

  function clear() {
    document.querySelectorAll("[data-not-sent]").forEach((p) => p.remove());
  }

  function say(event, text) {
    clear();
    const elt = event.detail.elt;
    const where = elt.closest("form") || elt;
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
    say(event, document.body.dataset.tNotSaved.replace("{status}", event.detail.xhr.status)));
})();
