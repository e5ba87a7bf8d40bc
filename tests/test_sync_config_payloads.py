"""A configuration pull answer this instance cannot store (a value that is a list or an object,
a number past an INTEGER's range, text with NUL, a site kind this version does not know, a
version below 0) is refused whole, before anything is written: `fieldapp sync` says what is
wrong with the upstream's answer, in the operator's language, the status keeps it, and the
sites and records already here stay as they were."""

from __future__ import annotations

import pytest
from sync_helpers import SITE_ID, Upstream, add_site, entry, site

import sync
from fieldapp import records
from fieldapp.syncing import configuration

BAD = {
    "an object for a name": {"version": 7, "sites": [site(name={"zh": "小区"})]},
    "a list in a roster row": {
        "version": 7,
        "sites": [site()],
        "roster": [{"id": "r1", "site_id": SITE_ID, "name": ["王五"]}],
    },
    "a flag past INTEGER": {"version": 7, "sites": [site(active=2**70)]},
    "NUL in a name": {"version": 7, "sites": [site(name="上游\x00小区")]},
    # json reads "\ud800" as a lone surrogate, which no database's UTF-8 can hold.
    "a lone surrogate in a name": {"version": 7, "sites": [site(name="上游\ud800小区")]},
    "an id that is not text": {"version": 7, "sites": [site(id=None, code="Other1234567890")]},
    "a kind this version does not know": {"version": 7, "sites": [site(kind="school")]},
    "a version past INTEGER": {"version": 2**70, "sites": [site()]},
    "a version below 0": {"version": -1, "sites": [site()]},
}


def state(db) -> tuple:
    sites = db.execute("SELECT id, name, code FROM sites ORDER BY id").fetchall()
    version = db.execute("SELECT config_version FROM sync_upstream").fetchone()[0]
    return [tuple(r) for r in sites], version


@pytest.mark.parametrize("payload", BAD.values(), ids=BAD.keys())
def test_a_pull_answer_that_cannot_be_stored_is_refused_whole(app, db, payload):
    here = add_site(app.config["DATABASE"], "本地小区")
    before = state(db)
    with app.app_context(), pytest.raises(sync.SyncError) as refused:
        configuration.apply_config(db, payload)
    assert str(refused.value).startswith("上级发来的配置")  # zh-Hans, the default
    assert state(db) == before
    assert [r[0] for r in before[0]] == [here]
    assert db.execute("SELECT version FROM config_version").fetchone()[0] == 1  # our own site


def test_sync_says_what_is_wrong_with_the_answer_in_the_operators_language(
    app, db, runner, monkeypatch
):
    here = add_site(app.config["DATABASE"], "本地小区")
    with app.test_request_context():
        saved = [r.uuid for r in records.save(db, [entry(here, name="张三")], source="gate")]
    app.config.update(UPSTREAM_URL="http://city.test", UPSTREAM_TOKEN="abc")
    answers = {
        "zh_CN.UTF-8": (BAD["a flag past INTEGER"], "上级发来的配置无法应用：sites"),
        "zh_TW.UTF-8": (BAD["a kind this version does not know"], "本版本不認識"),
        "en_US.UTF-8": (BAD["an object for a name"], "“name” is not a value"),
    }
    for lang, (payload, said) in answers.items():
        monkeypatch.setattr(sync, "HttpTransport", lambda _url, _token, p=payload, **_: Upstream(p))
        result = runner.invoke(args=["sync"], env={"LANG": lang})
        assert result.exit_code == 1, result.output
        assert isinstance(result.exception, SystemExit), repr(result.exception)
        assert said in result.output
        # Not taken for a failure of this instance's own database.
        assert "database" not in result.output and "数据库" not in result.output
        status = runner.invoke(args=["sync", "--status"], env={"LANG": lang})
        assert said.split("：")[-1] in status.output
    assert [r[0] for r in state(db)[0]] == [here]
    assert [r[0] for r in db.execute("SELECT uuid FROM entries")] == saved
