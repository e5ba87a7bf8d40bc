/* Screening on the site phone: the site's people and the form, all on this page, so that it
 * works with no network at all. The page carries the campaign, the people and their last
 * answers (#screening-data); an answer is checked by the instance's own rules (rules.js, the
 * form's data-rules), kept in the outbox (outbox.js) and sent from there like a gate entry.
 * What this phone answered is remembered too (the outbox's meta store), so a page the service
 * worker kept from this morning still shows who is done.
 *
 * Without this script the page still works: each person is a link that shows the form
 * (?person=), and the form posts to the instance.
 */
(function () {
  "use strict";
  const root = document.getElementById("screening");
  const form = document.getElementById("screen-form");
  const O = self.FieldOutbox;
  const R = self.FieldRules;
  if (!root || !form || !O || !R) return;

  const data = JSON.parse(document.getElementById("screening-data").textContent);
  const rules = R.rulesOf(form);
  const view = document.getElementById("people-view");
  const list = document.getElementById("people");
  const MEMORY = "screening:" + data.campaign.id + ":" + data.site.id;
  const SCREENER_KEY = "fieldapp.screener";
  const ANSWERS = ["whereabouts", "whereabouts_where", "contact", "status", "nat_result",
    "nat_date", "vaccine_doses"];
  const PERSON = ["name", "phone", "unit", "person_type"];
  const people = new Map(data.people.map((p) => [p.id, p]));
  // Someone this phone added, who has joined the roster since (or was added on another phone
  // too): the instance lists them once, under another id; this phone's answers are theirs.
  const aliases = new Map(data.people.flatMap((p) => (p.aliases || []).map((a) => [a, p])));
  let filter = "not_yet";
  let open = null; // the person the form is open for
  let chip = null; // {n, value}: the test date a chip ("Today", "Yesterday") put in the form

  function t(key, vars) {
    const text = root.dataset["t" + key] || "";
    return text.replace(/\{(\w+)\}/g, (_, k) => (vars && k in vars ? vars[k] : ""));
  }

  /* How far this phone's clock is behind the instance's (ms), as last heard (outbox.js keeps
   * it in "meta": a push's answer, status.js's ping), when it is wrong by more than the
   * instance allows; else 0 (what the instance does not time again is of this clock's day). */
  let offset = 0;
  async function readClock() {
    const [clock, allowed] = await Promise.all([O.getMeta("clock"), O.getMeta("clock_tolerance_ms")])
      .catch(() => [null, null]);
    const ms = clock && typeof clock.offset_ms === "number" && isFinite(clock.offset_ms) ? clock.offset_ms : 0;
    const was = offset;
    offset = Math.abs(ms) > (Number(allowed) || O.CLOCK_TOLERANCE_MS) ? ms : 0;
    return offset !== was;
  }

  /* Today at the gates (the instance's TIMEZONE), as YYYY-MM-DD (outbox.js): by the
   * instance's time, on a phone whose clock is wrong; what the list counts and shows. */
  const today = () => FieldDays.day(Date.now() + offset, data.tz);
  /* Today by this phone's clock: the day an answer is kept with, of the same clock as its time
   * of recording, so that the two move together when it is timed again (outbox.js dayMoved). */
  const phoneToday = () => FieldDays.today(data.tz);

  function daysBefore(day, n) {
    const [y, m, d] = day.split("-").map(Number);
    return new Date(Date.UTC(y, m - 1, d - n)).toISOString().slice(0, 10);
  }

  /* Whether an answer of that day counts today (Campaign.window). */
  function counts(day) {
    const now = today();
    return data.campaign.daily ? day === now : data.campaign.start <= day && day <= now;
  }

  function stateOf(p) {
    const c = p.current;
    if (!c || !counts(c.day)) return "not_yet";
    return data.followed.includes(c.status) ? "follow" : "done";
  }

  function later(a, b) {
    return !b || a.recorded_at > b.recorded_at || (a.recorded_at === b.recorded_at && a.uuid > b.uuid);
  }

  /* What this phone answered, newer than what the page was made with, wins. */
  async function merge() {
    const memory = (await O.getMeta(MEMORY).catch(() => null)) || {};
    for (const [id, kept] of Object.entries(memory)) {
      let p = people.get(id) || aliases.get(id);
      if (!p) {
        p = Object.assign({ id, added: true, last: null, current: null }, kept.person);
        people.set(id, p);
      }
      if (later(kept.answer, p.last)) p.last = kept.answer;
      if (counts(kept.answer.day) && later(kept.answer, p.current)) p.current = kept.answer;
    }
  }

  async function remember(p, answer) {
    const memory = (await O.getMeta(MEMORY).catch(() => null)) || {};
    const person = {};
    for (const k of ["name", "unit"].concat(p.added ? ["phone", "person_type"] : [])) person[k] = p[k] || "";
    memory[p.id] = { person, answer };
    await O.setMeta(MEMORY, memory);
  }

  function render() {
    const query = (document.getElementById("people-q").value || "").trim().toLowerCase();
    const tally = { done: 0, follow: 0, not_yet: 0 };
    const shown = [];
    for (const p of people.values()) {
      const state = stateOf(p);
      tally[state] += 1;
      const hit = !query || (p.name + " " + (p.unit || "")).toLowerCase().includes(query);
      const wanted = filter === "all" || state === filter || (filter === "done" && state === "follow");
      if (hit && (wanted || query)) shown.push([p, state]);
    }
    const all = people.size;
    root.querySelector("[data-count]").textContent = t("Count", {
      done: tally.done + tally.follow, all, not_yet: tally.not_yet, follow: tally.follow,
    });
    list.replaceChildren(...shown.map(([p, state]) => item(p, state)));
    if (!shown.length) {
      const li = document.createElement("li");
      li.className = "muted";
      li.textContent = t("None");
      list.append(li);
    }
    root.querySelectorAll("[data-filter]").forEach((b) => {
      b.setAttribute("aria-pressed", String(b.dataset.filter === filter));
    });
  }

  function item(p, state) {
    const li = document.createElement("li");
    li.dataset.person = p.id;
    li.dataset.state = state;
    const a = document.createElement("a");
    a.className = "person state-" + state;
    a.href = "?person=" + encodeURIComponent(p.id);
    const name = document.createElement("strong");
    name.textContent = p.name;
    const unit = document.createElement("span");
    unit.className = "unit";
    unit.textContent = p.unit || "";
    a.append(name, " ", unit);
    if (p.added) {
      const badge = document.createElement("span");
      badge.className = "badge";
      badge.textContent = t("Added");
      a.append(" ", badge);
    }
    const mark = document.createElement("span");
    mark.className = "state";
    mark.textContent = data.states[state];
    a.append(" ", mark);
    li.append(a);
    return li;
  }

  function set(name, value) {
    const control = form.elements[name];
    if (!control) return;
    if (control.tagName) control.value = value || "";
    else for (const radio of control) radio.checked = radio.value === value;
  }

  function valueOf(name) {
    const control = form.elements[name];
    if (!control) return "";
    if (control.tagName) return control.value;
    const on = [...control].find((r) => r.checked);
    return on ? on.value : "";
  }

  /* Fields that apply only after some answers ("Which province?", the test date). */
  function showOnly() {
    form.querySelectorAll("[data-only-if]").forEach((box) => {
      const [name, values] = box.dataset.onlyIf.split("=");
      box.hidden = !values.split("|").includes(valueOf(name)) && !box.querySelector(".error");
    });
  }

  function summary(answer) {
    return ANSWERS.filter((k) => answer[k] && data.labels[k])
      .map((k) => data.labels[k][answer[k]] || answer[k]).join(" · ");
  }

  function fill(p) {
    R.show(form, {});
    set("uuid", self.crypto.randomUUID());
    set("recorded_at", "");
    set("person_id", p.id);
    set("person_name", p.name || "");
    set("added", p.added ? "true" : "false");
    set("day", today());
    chip = null;
    for (const k of PERSON) set(k, p[k] || (k === "person_type" ? data.site.person_type : ""));
    const last = p.last || {};
    for (const k of ANSWERS) set(k, last[k] || "");
    try {
      set("screener", localStorage.getItem(SCREENER_KEY) || "");
    } catch (_) { /* private mode */ }
    set("note", "");
    form.querySelector("[data-added-fields]").hidden = !(p.added && !p.name);
    const title = form.querySelector("[data-person-title]");
    title.textContent = p.name || t("New");
    if (p.unit) {
      const unit = document.createElement("span");
      unit.className = "muted";
      unit.textContent = " " + p.unit;
      title.append(unit);
    }
    form.querySelector("[data-last]").textContent = !p.name ? ""
      : p.last ? t("Last", { day: p.last.day, answers: summary(p.last) }) : t("First");
    form.querySelector("[data-same]").hidden = !p.last;
    showOnly();
  }

  function show(p, push) {
    open = p;
    fill(p);
    view.hidden = true;
    form.hidden = false;
    window.scrollTo(0, 0);
    if (push) history.pushState({ person: p.id }, "", "?" + (p.name ? "person=" + encodeURIComponent(p.id) : "add=1"));
    const first = p.name ? form.querySelector(p.last ? ".same-as-last" : "fieldset input") : form.elements.name;
    if (first) first.focus({ preventScroll: true });
  }

  function showList(push) {
    open = null;
    form.hidden = true;
    view.hidden = false;
    if (push) history.pushState({}, "", location.pathname);
    render();
  }

  function fresh() {
    return { id: self.crypto.randomUUID(), added: true, name: "", unit: "", phone: "",
      person_type: data.site.person_type, last: null, current: null };
  }

  function flash(text) {
    const el = root.querySelector("[data-screening-flash]");
    el.textContent = text;
    el.hidden = !text;
  }

  async function save(event) {
    event.preventDefault();
    if (!open) return;
    const raw = R.dataOf(form);
    raw.day = today();
    const { clean, errors } = R.check(rules, raw);
    R.show(form, errors);
    if (Object.keys(errors).length) {
      showOnly();
      return;
    }
    const p = open;
    // Checked as of today at the gates; kept as of today by this phone's clock (the day, and
    // a test date a chip gave as "n days ago", not one typed), which the instance's clock
    // makes today's again when it times the record (outbox.js dayMoved).
    const kept = Object.assign({}, clean, { day: phoneToday() });
    const byChip = !!chip && !!clean.nat_date && clean.nat_date === chip.value;
    if (byChip) kept.nat_date = daysBefore(kept.day, chip.n);
    const record = {
      uuid: raw.uuid || self.crypto.randomUUID(),
      kind: "screening",
      recorded_at: O.recordedAt(),
      data: Object.assign(kept, {
        campaign_id: data.campaign.id, site_id: data.site.id, person_id: p.id,
      }),
      queued_at: Date.now(),
      // Its day is today by this phone's clock: timed again for a wrong clock, it moves with
      // the time (outbox.js dayMoved). Kept on the phone, not sent.
      day_tz: data.tz,
    };
    // So is the test date a chip set: it moves by as many days (a typed date is as typed).
    if (byChip) record.nat_date_by_clock = true;
    const waiting = await O.add(record); // durable before the volunteer reads "saved"
    const answer = { uuid: record.uuid, day: clean.day, recorded_at: record.recorded_at };
    for (const k of ANSWERS) answer[k] = clean[k] === undefined ? "" : clean[k];
    if (p.added) for (const k of PERSON) p[k] = clean[k];
    p.last = answer;
    if (counts(answer.day)) p.current = answer;
    people.set(p.id, p);
    await remember(p, answer).catch(() => null);
    try {
      localStorage.setItem(SCREENER_KEY, clean.screener || "");
    } catch (_) { /* private mode */ }
    showList(true);
    flash(t("Saved", { name: p.name, n: waiting }));
    O.send().catch(() => null); // the status line says how it went
  }

  form.addEventListener("submit", save);
  form.addEventListener("change", (e) => {
    if (e.target.type === "radio") showOnly();
  });
  form.querySelectorAll("[data-days-ago]").forEach((button) => {
    button.addEventListener("click", () => {
      const n = Number(button.dataset.daysAgo);
      set("nat_date", daysBefore(today(), n));
      chip = { n, value: valueOf("nat_date") };
    });
  });
  if (form.elements.nat_date && form.elements.nat_date.tagName) {
    form.elements.nat_date.addEventListener("input", () => { chip = null; }); // typed: as typed
  }
  const chips = form.querySelector("[data-date-chips]");
  if (chips) chips.hidden = false;
  form.querySelector("[data-back]").addEventListener("click", (e) => {
    e.preventDefault();
    showList(true);
  });
  list.addEventListener("click", (e) => {
    const link = e.target.closest && e.target.closest("li[data-person] a");
    if (!link) return;
    e.preventDefault();
    const p = people.get(link.closest("li").dataset.person);
    if (p) show(p, true);
  });
  root.querySelector("[data-add]").addEventListener("click", (e) => {
    e.preventDefault();
    show(fresh(), true);
  });
  document.getElementById("people-q").addEventListener("input", render);
  const tabs = root.querySelector("[data-tabs]");
  tabs.hidden = false;
  tabs.addEventListener("click", (e) => {
    const button = e.target.closest && e.target.closest("[data-filter]");
    if (!button) return;
    filter = button.dataset.filter;
    render();
  });
  window.addEventListener("popstate", () => {
    const wanted = new URLSearchParams(location.search).get("person");
    if (wanted && people.get(wanted)) show(people.get(wanted), false);
    else showList(false);
  });
  document.addEventListener("visibilitychange", async () => {
    if (document.visibilityState !== "visible") return;
    await readClock();
    if (!open) render();
  });
  // The instance told this phone how far its clock is off (a push, a ping): today may be
  // another day than the list shows.
  try {
    const channel = new BroadcastChannel(O.CHANNEL);
    channel.onmessage = async (e) => {
      if (e.data && e.data.type === "clock" && (await readClock()) && !open) render();
    };
  } catch (_) { /* no BroadcastChannel: the next visit reads it */ }

  readClock().then(merge).then(() => {
    const asked = new URLSearchParams(location.search);
    const wanted = asked.get("person") && people.get(asked.get("person"));
    if (wanted) show(wanted, false);
    else if (asked.get("add") === "1") show(fresh(), false);
    else showList(false);
  });
})();
