/* The rules of the gate on the phone: fieldapp/rules.py's check(), applied to the rules the
 * instance hands over (rules.for_phone(), in the page's form), so the
 * phone refuses exactly what the instance would refuse, with the same message beside the same
 * field, before it says "saved" — offline as online. A form carries its rules as JSON in its
 * data-rules attribute (an attribute, because htmx drops <script> elements it swaps in).
 *
 * Loaded by the pages and by the service worker (importScripts): FieldRules.check() is pure.
 */
(function (global) {
  "use strict";

  function strip(value, spaces) {
    let start = 0;
    let end = value.length;
    while (start < end && spaces.includes(value[start])) start += 1;
    while (end > start && spaces.includes(value[end - 1])) end -= 1;
    return value.slice(start, end);
  }

  function fill(message, vars) {
    return String(message || "").replace(/\{(\w+)\}/g, (_, k) => (k in vars ? vars[k] : ""));
  }

  function whole(pattern) {
    return new RegExp("^(?:" + pattern + ")$", "u");
  }

  function yesno(value, rules) {
    if (value === true || value === false) return value;
    if (value === null || value === undefined) return false;
    if (typeof value === "string") {
      const word = strip(value, rules.spaces).toLowerCase();
      if (rules.yes.includes(word)) return true;
      if (rules.no.includes(word)) return false;
    }
    return null;
  }

  /* Full-width digits, points and letters as ASCII (NFKC), spaces trimmed (rules.typed). */
  function typed(value, rules) {
    return strip(value.normalize("NFKC"), rules.spaces);
  }

  /* A typed reading without the unit typed after it (rules.reading): "36.5℃" → "36.5". */
  function reading(value, rules) {
    value = typed(value, rules);
    // Rules of a page kept before readings could carry their unit have none.
    for (const unit of rules.temperature.units || []) {
      if (value.endsWith(unit)) return strip(value.slice(0, value.length - unit.length), rules.spaces);
    }
    return value;
  }

  /* The reading meant when the point was left out ("365": "36.5"), or "" (rules.missing_point). */
  function missingPoint(value, rules) {
    value = reading(value, rules);
    if (!/^[0-9]{3}$/.test(value)) return "";
    const meant = value.slice(0, 2) + "." + value[2];
    const t = Number(meant);
    return t >= rules.temperature.min && t <= rules.temperature.max ? meant : "";
  }

  /* A typed reading to tenths, half up on the typed digits (rules.parse_temperature). */
  function parseTemperature(value, rules) {
    if (typeof value !== "string") return null;
    const m = whole(rules.temperature.pattern).exec(reading(value, rules));
    if (!m) return null;
    const digits = (m[2] || "") + "00";
    return (parseInt(m[1], 10) * 10 + Number(digits[0]) + (digits[1] >= "5" ? 1 : 0)) / 10;
  }

  function normalise(kind, value, rules) {
    if (kind === "phone") {
      let digits = value.replace(new RegExp(rules.phone_junk, "gu"), "");
      if (digits.startsWith("+86")) digits = digits.slice(3);
      else if (digits.startsWith("86") && digits.length === 13) digits = digits.slice(2);
      return digits;
    }
    if (kind === "plate") return value.replace(new RegExp(rules.plate_junk, "gu"), "").toUpperCase();
    if (kind === "upper") return value.toUpperCase();
    if (kind === "lower") return value.toLowerCase();
    return value;
  }

  function residentId(value, rules) {
    let total = 0;
    for (let i = 0; i < 17; i += 1) total += Number(value[i]) * rules.id_weights[i];
    return rules.id_check[total % 11] === value[17];
  }

  function text(f, raw, rules) {
    let value = raw === null || raw === undefined ? "" : raw;
    if (typeof value !== "string") return [null, "text"];
    value = strip(value, rules.spaces);
    // Free text: without the invisible marks nobody typed on purpose (a zero-width space, a BOM,
    // a direction mark: removed as the spaces around it are, rules.py _visible), a textarea's
    // line separators as line breaks; then one line (a textarea's: its line breaks), no escape,
    // no mark that reorders what follows. A page kept from before a rule carries no class: the
    // phone refuses what that page's rules refused, the instance decides.
    if (!f.pattern && rules.removed) {
      value = value.replace(new RegExp(rules.removed, "gu"), "");
      if (f.lines && rules.line_separators) value = value.replace(new RegExp(rules.line_separators, "gu"), "\n");
      value = strip(value, rules.spaces);
    }
    if (f.max_len && [...value].length > f.max_len) return [null, "long"];
    const unprintable = f.lines ? rules.unprintable_lines : rules.unprintable;
    if (!f.pattern && unprintable && new RegExp(unprintable, "u").test(value)) {
      return [null, "control"];
    }
    if (f.pattern) value = typed(value, rules); // a number, a plate, an id: as ASCII
    value = normalise(f.normalise, value, rules);
    if (!value) return [value, f.required ? "required" : ""];
    if (f.pattern && !whole(f.pattern).test(value)) return [null, "pattern"];
    if (f.checksum === "resident_id" && !residentId(value, rules)) return [null, "checksum"];
    return [value, ""];
  }

  /* Whether a "name=a|b" condition holds for the values checked so far (rules.py _applies). */
  function applies(condition, clean) {
    const at = condition.indexOf("=");
    let value = clean[condition.slice(0, at)];
    if (value === true) value = "true";
    if (value === false) value = "false";
    return typeof value === "string" && condition.slice(at + 1).split("|").includes(value);
  }

  /* [the date as YYYY-MM-DD, problem] of a date field's raw value (rules.py _date). */
  function dateOf(f, raw, clean, rules) {
    let value = raw === null || raw === undefined ? "" : raw;
    if (typeof value !== "string") return [null, "date"];
    value = strip(value, rules.spaces);
    if (!value) return [value, f.required ? "required" : ""];
    if (!whole(rules.date).test(value)) return [null, "date"];
    const [y, m, d] = value.split("-").map(Number);
    const day = new Date(0);
    day.setUTCFullYear(y, m - 1, d);
    if (day.getUTCFullYear() !== y || day.getUTCMonth() !== m - 1 || day.getUTCDate() !== d) {
      return [null, "date"];
    }
    const limit = f.not_after ? clean[f.not_after] : null;
    if (typeof limit === "string" && limit && value > limit) return [null, "after"];
    return [value, ""];
  }

  /* {clean, errors} of a record's data: errors maps a field's name to its message. */
  function check(rules, data) {
    const clean = {};
    const errors = {};
    const fever = () => typeof clean.temperature === "number" && clean.temperature >= rules.fever_at;
    for (const f of rules.fields) {
      const raw = data[f.name] === undefined ? null : data[f.name];
      if ((f.only_if === "fever" && !fever()) || (f.only_if === "travel" && clean.travel !== true)) {
        clean[f.name] = "";
        continue;
      }
      if (f.only_if && f.only_if.includes("=") && !applies(f.only_if, clean)) {
        clean[f.name] = "";
        continue;
      }
      if (f.kind === "choice") {
        if (typeof raw === "string" && f.choices.includes(raw)) clean[f.name] = raw;
        else if ((raw === null || raw === "") && !f.required) clean[f.name] = "";
        else {
          const t = typeof clean.temperature === "number" ? clean.temperature.toFixed(1) : "";
          errors[f.name] = fill(f.messages.choice, { t });
        }
      } else if (f.kind === "yesno") {
        const value = yesno(raw, rules);
        if (value === null) errors[f.name] = f.messages.yesno;
        else clean[f.name] = value;
      } else if (f.kind === "temperature") {
        if (raw === null || (typeof raw === "string" && !strip(raw, rules.spaces))) {
          errors[f.name] = f.messages.required;
          continue;
        }
        const value = parseTemperature(raw, rules);
        // (A page kept before this hint has no words for it: it says "a number".)
        const meant = value === null && typeof raw === "string" && f.messages.point ? missingPoint(raw, rules) : "";
        if (meant) errors[f.name] = fill(f.messages.point, { t: meant });
        else if (value === null) errors[f.name] = f.messages.number;
        else if (value < rules.temperature.min || value > rules.temperature.max) {
          errors[f.name] = fill(f.messages.range, { t: reading(raw, rules) });
        } else clean[f.name] = value;
      } else if (f.kind === "date") {
        const [value, problem] = dateOf(f, raw, clean, rules);
        if (problem) errors[f.name] = f.messages[problem];
        else clean[f.name] = value;
      } else {
        const [value, problem] = text(f, raw, rules);
        if (problem) errors[f.name] = f.messages[problem];
        else clean[f.name] = value;
      }
    }
    return { clean, errors };
  }

  /* Each free-text field's value as check() cleaned it (clean), handed to set(name, value):
   * without the invisible marks removed and the spaces around, as the instance stores it. */
  function cleanText(rules, clean, set) {
    for (const f of rules.fields) {
      if (f.kind === "text" && !f.pattern && typeof clean[f.name] === "string") set(f.name, clean[f.name]);
    }
  }

  /* The rules a form carries (rules.for_phone() as JSON in its data-rules attribute). */
  function rulesOf(form) {
    if (!form.dataset.rules) return null;
    try {
      return JSON.parse(form.dataset.rules);
    } catch (_) {
      return null;
    }
  }

  /* A form's fields as the server reads them: the last value of each name, strings only. */
  function dataOf(form) {
    const data = {};
    for (const [k, v] of new FormData(form).entries()) if (typeof v === "string") data[k] = v;
    return data;
  }

  /* Show errors beside their fields as the server's templates do; clear earlier ones. */
  function show(form, errors) {
    form.querySelectorAll("[data-rule-error]").forEach((p) => p.remove());
    form.querySelectorAll(".field-error[data-rule-marked]").forEach((box) => {
      box.classList.remove("field-error");
      box.removeAttribute("data-rule-marked");
    });
    form.querySelectorAll("[aria-invalid][data-rule-marked]").forEach((input) => {
      input.removeAttribute("aria-invalid");
      input.removeAttribute("data-rule-marked");
    });
    let first = null;
    for (const [name, message] of Object.entries(errors)) {
      const control = form.elements[name];
      const input = control && (control.length !== undefined && !control.tagName ? control[0] : control);
      if (!input) continue;
      const box = input.closest("fieldset, .field") || input.parentElement;
      box.querySelectorAll(".error").forEach((p) => p.remove()); // the server's, from before
      if (!box.classList.contains("field-error")) {
        box.classList.add("field-error");
        box.setAttribute("data-rule-marked", "");
      }
      box.hidden = false;
      const p = document.createElement("p");
      p.className = "error";
      p.id = name + "-error";
      p.setAttribute("data-rule-error", "");
      p.textContent = message;
      box.append(p);
      if (box.tagName !== "FIELDSET") {
        input.setAttribute("aria-invalid", "true");
        input.setAttribute("aria-describedby", p.id);
        input.setAttribute("data-rule-marked", "");
      }
      first = first || { box, input };
    }
    if (first) {
      first.box.scrollIntoView({ block: "center" });
      first.input.focus({ preventScroll: true });
    }
  }

  global.FieldRules = { check, cleanText, rulesOf, dataOf, show, parseTemperature };

  if (typeof document === "undefined") return; // the service worker: check() is all it needs

  // Capture phase, on the document: before htmx or the browser sends the form anywhere, online
  // or offline, nothing that breaks a rule leaves the page, and what was typed stays.
  document.addEventListener("submit", (event) => {
    const form = event.target;
    if (!form.matches || !form.matches("form[data-outbox-kind]")) return;
    const rules = rulesOf(form);
    if (!rules) return;
    const { errors } = check(rules, dataOf(form));
    show(form, errors);
    if (Object.keys(errors).length) {
      event.preventDefault();
      event.stopImmediatePropagation();
    }
  }, true);

  // The service worker refused to keep an entry that breaks a rule (see sw.js).
  document.addEventListener("outbox-invalid", (event) => {
    const form = document.querySelector("form[data-outbox-kind=entry]");
    if (form && event.detail && event.detail.errors) show(form, event.detail.errors);
  });
})(self);
