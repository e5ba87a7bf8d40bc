"""Nothing a phone kept is lost without a word: an entry the instance answers `expired` (its
date past the horizon, perhaps only because the phone's clock was wrong) stays on the phone."""

from __future__ import annotations

from datetime import datetime, timedelta

from phone_support import (
    attention,
    names,
    outbox_loaded,
    ready,
    wait_waiting,
)

DAY = timedelta(days=1)


def stored(server, name: str) -> tuple:
    (row,) = server.query(
        "SELECT recorded_at, temperature, fever_action FROM entries WHERE name = ?", (name,)
    )
    return (datetime.fromisoformat(row[0]), row[1], row[2])


# An entry kept by the version of the app before this one: it remembers no contact, so nothing
# on the phone shows that its date is wrong.
KEEP_OLD = """async () => {
  const data = new FormData(document.getElementById("entry-form"));
  data.delete("uuid");
  for (const [k, v] of Object.entries({name: "旧发热", direction: "in", person_type: "resident",
       phone: "13812345678", temperature: "38.1", fever_action: "clinic"})) data.set(k, v);
  const rec = FieldOutbox.fromForm(data, "entry", []);
  rec.recorded_at = new Date(Date.now() - 30 * 86400000).toISOString();
  const db = await FieldOutbox.open();
  await new Promise((done, fail) => {
    const tx = db.transaction("outbox", "readwrite");
    tx.objectStore("outbox").put(rec);
    tx.oncomplete = done;
    tx.onerror = () => fail(tx.error);
  });
}"""


def test_an_entry_answered_expired_waits_on_the_phone_to_be_exported_or_removed(
    server, context, enrolled_page
):
    """The instance answers `expired` for an entry dated before its horizon and does not store
    it. The phone used to take that as delivered and delete it (a fever gone without a word);
    now it needs attention: it says why, goes into the export, and is removed only when the
    volunteer says so."""
    page = enrolled_page
    ready(page)
    outbox_loaded(page)
    context.set_offline(True)
    page.evaluate(KEEP_OLD)
    wait_waiting(page, 1)
    context.set_offline(False)
    wait_waiting(page, 0)
    assert names(server) == []  # past the horizon: not stored, as retention promises
    assert server.query("SELECT COUNT(*) FROM sync_rejects")[0][0] == 0
    statuses = page.evaluate(
        "async () => (await FieldOutbox.all('attention')).map(r => [r.data.name, r.status])"
    )
    assert statuses == [["旧发热", "expired"]]
    page.wait_for_selector("[data-status-attention]:has-text('1 条记录需要处理')")

    page.goto(server.url + "/outbox")
    item = page.locator("[data-outbox-attention] li[data-expired]:has-text('旧发热')")
    item.wait_for()
    assert "办公室没有保存这条记录" in item.inner_text()
    assert "38.1 °C" in item.inner_text()
    exported = page.evaluate(
        "async () => (await FieldOutbox.exportData()).records.map(r => [r.data.name, r.data.temperature])"
    )
    assert exported == [["旧发热", "38.1"]]

    asked = []
    page.once("dialog", lambda d: (asked.append(d.message), d.dismiss()))
    item.locator("button").click()
    assert asked and "永久" in asked[0]
    assert attention(page) != []  # not confirmed: kept
    page.once("dialog", lambda d: d.accept())
    item.locator("button").click()
    item.wait_for(state="detached")
    assert attention(page) == []
