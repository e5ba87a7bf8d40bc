/* The in-app QR scanner: the native BarcodeDetector where it exists, jsQR otherwise. */
(function () {
  "use strict";
  const root = document.getElementById("scanner");
  if (!root) return;
  const video = root.querySelector("[data-scan-video]");
  const canvas = root.querySelector("[data-scan-canvas]");
  const error = root.querySelector("[data-scan-error]");
  let stream = null;

  function fail(text) {
    error.textContent = text;
    error.hidden = false;
  }

  function found(text) {
    // Only gate codes of this instance: a poster's URL ends in /s/<code>.
    let url;
    try {
      url = new URL(text, location.origin);
    } catch (_) {
      return false;
    }
    const m = url.pathname.match(/\/s\/([^/]+)\/?$/);
    if (url.origin !== location.origin || !m) {
      fail(root.dataset.tNotSite);
      return false;
    }
    stop();
    location.assign("/go?code=" + encodeURIComponent(decodeURIComponent(m[1])));
    return true;
  }

  function stop() {
    if (stream) stream.getTracks().forEach((track) => track.stop());
    stream = null;
  }

  async function detector() {
    if ("BarcodeDetector" in window) {
      try {
        const formats = await window.BarcodeDetector.getSupportedFormats();
        if (formats.includes("qr_code")) {
          const d = new window.BarcodeDetector({ formats: ["qr_code"] });
          return async () => ((await d.detect(video))[0] || {}).rawValue;
        }
      } catch (_) { /* fall through to jsQR */ }
    }
    if (typeof window.jsQR !== "function") return null;
    const ctx = canvas.getContext("2d", { willReadFrequently: true });
    return async () => {
      const w = video.videoWidth;
      const h = video.videoHeight;
      if (!w || !h) return null;
      canvas.width = w;
      canvas.height = h;
      ctx.drawImage(video, 0, 0, w, h);
      const code = window.jsQR(ctx.getImageData(0, 0, w, h).data, w, h);
      return code && code.data;
    };
  }

  async function start() {
    error.hidden = true;
    const detect = await detector();
    if (!detect || !navigator.mediaDevices) return fail(root.dataset.tNoCamera);
    try {
      stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" } });
    } catch (_) {
      return fail(root.dataset.tNoCamera);
    }
    video.srcObject = stream;
    video.hidden = false;
    await video.play();
    const loop = async () => {
      if (!stream) return;
      try {
        const text = await detect();
        if (text && found(text)) return;
      } catch (_) { /* a frame that could not be read: try the next */ }
      setTimeout(loop, 200);
    };
    loop();
  }

  root.querySelector("[data-scan-start]").addEventListener("click", start);
  window.addEventListener("pagehide", stop);
})();
