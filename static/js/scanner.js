/* The in-app QR scanner: the native BarcodeDetector where it exists, jsQR otherwise (WebKit,
 * so every iPhone, has no BarcodeDetector). FieldScanner.attach(root, onText) gives a panel
 * (its [data-scan-start], [data-scan-video], [data-scan-canvas], [data-scan-error]) a camera
 * whose decoded text goes to onText; onText returns true when it is done with the camera.
 *
 * jsQR is loaded from root.dataset.jsqr when it is needed, not before: phones that have the
 * native detector never download it (gate.js fetches it ahead, for offline use, where it is
 * needed). The /scan page's panel (#scanner) opens a scanned site's gate; the gate page attaches
 * its own (passes.js, loaded with this file by the first tap on "scan").
 */
(function (global) {
  "use strict";

  function loadScript(src) {
    return new Promise((resolve, reject) => {
      if (typeof global.jsQR === "function") return resolve();
      const s = document.createElement("script");
      s.src = src;
      s.onload = () => resolve();
      s.onerror = () => reject(new Error("jsQR"));
      document.head.append(s);
    });
  }

  function hasNative() { return "BarcodeDetector" in global; }

  function attach(root, onText) {
    const video = root.querySelector("[data-scan-video]");
    const canvas = root.querySelector("[data-scan-canvas]");
    const error = root.querySelector("[data-scan-error]");
    const stopButton = root.querySelector("[data-scan-stop]");
    let stream = null;

    function fail(text) {
      error.textContent = text;
      error.hidden = !text;
    }

    function stop() {
      if (stream) stream.getTracks().forEach((track) => track.stop());
      stream = null;
      video.hidden = true;
      if (stopButton) stopButton.hidden = true;
      root.classList.remove("is-scanning");
    }

    async function detector() {
      if (hasNative()) {
        try {
          const formats = await global.BarcodeDetector.getSupportedFormats();
          if (formats.includes("qr_code")) {
            const d = new global.BarcodeDetector({ formats: ["qr_code"] });
            return async () => ((await d.detect(video))[0] || {}).rawValue;
          }
        } catch (_) { /* fall through to jsQR */ }
      }
      if (typeof global.jsQR !== "function" && root.dataset.jsqr) {
        try { await loadScript(root.dataset.jsqr); } catch (_) { return null; }
      }
      if (typeof global.jsQR !== "function") return null;
      const ctx = canvas.getContext("2d", { willReadFrequently: true });
      return async () => {
        const w = video.videoWidth;
        const h = video.videoHeight;
        if (!w || !h) return null;
        canvas.width = w;
        canvas.height = h;
        ctx.drawImage(video, 0, 0, w, h);
        const code = global.jsQR(ctx.getImageData(0, 0, w, h).data, w, h);
        return code && code.data;
      };
    }

    /* Start the camera; false if it cannot be used (said on the page unless quiet). */
    async function start(quiet) {
      if (stream) return true;
      fail("");
      const refuse = () => {
        if (quiet !== true) fail(root.dataset.tNoCamera);
        return false;
      };
      const detect = await detector();
      if (!detect || !navigator.mediaDevices) return refuse();
      try {
        stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" } });
      } catch (_) {
        return refuse();
      }
      video.srcObject = stream;
      video.hidden = false;
      if (stopButton) stopButton.hidden = false;
      root.classList.add("is-scanning");
      try { await video.play(); } catch (_) { /* autoplay refused: frames still come */ }
      const own = stream;
      const loop = async () => {
        if (stream !== own) return;
        try {
          const text = await detect();
          if (text && onText(text)) return stop();
        } catch (_) { /* a frame that could not be read: try the next */ }
        setTimeout(loop, 200);
      };
      loop();
      return true;
    }

    root.querySelector("[data-scan-start]").addEventListener("click", () => start());
    if (stopButton) stopButton.addEventListener("click", stop);
    global.addEventListener("pagehide", stop);
    return { start, stop, fail, running: () => !!stream };
  }

  global.FieldScanner = { attach };

  /* A site's code in a scanned or typed text, read as /go reads it without JavaScript: what
   * follows the last "/s/" of a gate page's address (a poster of this instance, or of the one
   * above: sites come down with their codes), or, typed, the text itself; "" if there is none. */
  function gateCode(text, typed) {
    const t = text.trim();
    if (!t.includes("/s/")) return typed ? t : "";
    return t.slice(t.lastIndexOf("/s/") + 3).split(/[/?#]/)[0];
  }

  // The /scan page: a site's poster, or its typed code, opens that site's gate page itself,
  // which the service worker answers from the copy the phone kept when there is no network.
  const page = document.getElementById("scanner");
  if (!page) return;
  const open = (code) => location.assign("/s/" + encodeURIComponent(code));
  const scanner = attach(page, (text) => {
    const code = gateCode(text, false);
    if (!code) {
      scanner.fail(page.dataset.tNotSite);
      return false;
    }
    open(code);
    return true;
  });
  const typed = document.querySelector("form[data-gate-code]");
  if (typed) typed.addEventListener("submit", (event) => {
    const code = gateCode(typed.elements.code.value, true);
    if (!code) return; // /go says what is wrong
    event.preventDefault();
    open(code);
  });
  // Sent back here by the service worker: that gate's page is not on this phone, no network.
  // (Only a code's characters: the address is anyone's to make.)
  const missing = new URLSearchParams(location.search).get("missing") || "";
  if (/^[\w-]{1,64}$/.test(missing)) scanner.fail(page.dataset.tNotKept.replace("{code}", () => missing));
})(self);
