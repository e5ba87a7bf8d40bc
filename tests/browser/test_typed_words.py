"""What is typed into a text field is kept as the text it is, offline as online."""

from __future__ import annotations

from phone_support import attention, fill, names, ready, wait_waiting


def test_a_note_that_reads_true_or_false_is_kept_offline_as_typed(server, context, enrolled_page):
    """The phone's rules take any note; the outbox must not turn the words "true" and "false"
    into yes/no values, which the instance refuses in a text field (the entry would end in
    "needs attention" instead of being stored)."""
    page = enrolled_page
    ready(page)
    context.set_offline(True)
    fill(page, "备注一")
    page.fill("#entry-form [name=note]", "false")
    page.click("#entry-form button.save")
    page.wait_for_selector("[data-outbox-flash]:has-text('已保存在本机，1 条待发送')")
    context.set_offline(False)
    wait_waiting(page, 0)
    assert attention(page) == []
    assert names(server) == ["备注一"]
    assert server.query("SELECT note, travel FROM entries")[0][:] == ("false", 0)
