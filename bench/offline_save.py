"""Phones offline: time from tapping save to the confirmation, and delivery of 1,000 waiting.

    .venv/bin/python bench/offline_save.py [--saves 40] [--waiting 1000] [--cpu 6]

Runs a real `fieldapp serve` and Debian's Chromium (the browser tests' set-up), enrols the
browser as a gate phone, then:
- offline, with the CPU slowed --cpu times (a cheap phone), taps "save" --saves times; each time
  is measured inside the page, from the click to the confirmation being painted (the phone has
  checked the gate's rules and the service worker stored the record durably by then);
- puts --waiting records in the outbox, goes online, taps "send now" and measures until the
  outbox is empty, then checks the instance holds each record exactly once.
Targets (issue 3): median save ≤ 100 ms; 1,000 records delivered ≤ 10 s.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import servers as fixtures  # noqa: E402 -- the tests' real instances and enrolment

ONE_SAVE = """async (name) => {
  const form = document.getElementById("entry-form");
  form.querySelector("[name=direction][value=in]").checked = true;
  form.querySelector("[name=person_type][value=resident]").checked = true;
  form.querySelector("[name=name]").value = name;
  form.querySelector("[name=phone]").value = "13812345678";
  form.querySelector("[name=temperature]").value = "36.5";
  const flash = document.querySelector("[data-outbox-flash]");
  const saved = new Promise((resolve) =>
    document.addEventListener("outbox-saved", resolve, { once: true }));
  const start = performance.now();
  form.querySelector("button.save").click();
  await saved;
  await new Promise((resolve) => requestAnimationFrame(() => resolve()));
  if (flash.hidden) throw new Error("no confirmation shown");
  return performance.now() - start;
}"""

FILL = """async ([count, site]) => {
  for (let i = 0; i < count; i++) {
    await FieldOutbox.add(FieldOutbox.fromFields({
      site_id: site, direction: "in", person_type: "resident", name: "待发" + i,
      phone: "13812345678", temperature: "36.6", health_code: "green", travel: "false",
    }, "entry", []));
  }
}"""

DRAIN = """async () => {
  const start = performance.now();
  document.querySelector("[data-send-now]").click();
  while ((await FieldOutbox.summary()).waiting > 0) await new Promise((r) => setTimeout(r, 20));
  return performance.now() - start;
}"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--saves", type=int, default=40)
    parser.add_argument("--waiting", type=int, default=1000)
    parser.add_argument("--cpu", type=float, default=6, help="CPU slow-down (1: none)")
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright

    folder = Path(tempfile.mkdtemp(prefix="fieldapp-bench-"))
    server = fixtures.make_server(folder / "instance")
    server.start()
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=fixtures.CHROMIUM,
                args=["--no-sandbox", "--disable-background-networking"],
            )
            context = browser.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN")
            page = context.new_page()
            fixtures.enrol_browser(server, page, "测速手机")
            deadline = time.monotonic() + 30
            while not page.evaluate(
                "async () => !!navigator.serviceWorker.controller &&"
                " !!(await caches.match(location.pathname, {ignoreVary: true}))"
            ):
                if time.monotonic() > deadline:
                    raise SystemExit("the service worker did not take over the page")
                time.sleep(0.05)

            context.set_offline(True)
            cdp = context.new_cdp_session(page)
            cdp.send("Emulation.setCPUThrottlingRate", {"rate": args.cpu})
            page.evaluate(ONE_SAVE, "预热")  # first use opens IndexedDB; not counted
            times = [page.evaluate(ONE_SAVE, f"测速{i}") for i in range(args.saves)]
            cdp.send("Emulation.setCPUThrottlingRate", {"rate": 1})
            times.sort()
            print(
                f"offline save → confirmation ({args.saves} taps, CPU {args.cpu:g}× slower):"
                f" median {statistics.median(times):.1f} ms,"
                f" p90 {times[int(len(times) * 0.9) - 1]:.1f} ms, max {times[-1]:.1f} ms"
                "  (target: median ≤ 100 ms)"
            )

            site = server.query("SELECT id FROM sites WHERE active = 1 ORDER BY name LIMIT 1")[0][0]
            page.evaluate(FILL, [args.waiting, site])
            already = args.saves + 1
            context.set_offline(False)
            elapsed = page.evaluate(DRAIN) / 1000
            total, distinct = server.query("SELECT COUNT(*), COUNT(DISTINCT uuid) FROM entries")[0]
            expected = args.waiting + already
            print(
                f"deliver {args.waiting + already} waiting records: {elapsed:.2f} s"
                f" ({(args.waiting + already) / elapsed:.0f} records/s); instance holds {total}"
                f" ({distinct} distinct, expected {expected})  (target: 1,000 ≤ 10 s)"
            )
            browser.close()
    finally:
        server.stop()


if __name__ == "__main__":
    main()
