"""The console's record kinds survive a relay: what a downstream reads back from its table and
pushes up hashes the same as what was first stored, so repeats are duplicates, not conflicts."""

from __future__ import annotations

import pytest
from console_support import make_site, save, wire_entry

import sync
from fieldapp import records
from fieldapp.console import cases, corrections


@pytest.mark.parametrize(
    "make",
    [
        lambda e: corrections.wire(e, "wang", "改名", {"name": "张建华", "temperature": "37.50"}),
        lambda e: corrections.wire(e, "wang", "重复登记", void=True),
        lambda e: cases.wire(e, "wang", "remeasure", temperature="38", note=" 复测 "),
        lambda e: cases.wire(e, "wang", "close", outcome="normal"),
        lambda e: cases.wire(e, "wang", "acknowledge", temperature=39.0, outcome="normal"),
    ],
)
def test_relayed_record_hashes_the_same(app, db, make):
    site = make_site(app)
    (entry,) = save(app, wire_entry(site["id"], temperature=38.0, fever_action="clinic"))
    record = make(entry)
    with app.test_request_context():
        assert records.save(db, [record], source="test")[0].status == "applied"
        kind = records.registry().get(record["kind"])
        row = db.execute(f"SELECT * FROM {kind.table} WHERE uuid = ?", (record["uuid"],)).fetchone()
        relayed = kind.validate(db, kind.from_row(row))
        digest = sync.content_hash(kind.name, row["uuid"], row["recorded_at"], None, relayed)
        assert digest == row["hash"]
        again = dict(record, data=kind.from_row(row))
        assert records.save(db, [again], source="upstream")[0].status == "duplicate"
