// DOM helpers: elements, forms with inline errors, notices. No HTML strings anywhere: every
// piece of text reaches the page as a text node, so nothing a server or a user sends can
// become markup.

/** Builds an element. `attrs` keys starting with "on" are event listeners; `class`, `for`
 * and every other key become attributes (true → present, false/null → absent). */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs ?? {})) {
    if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2).toLowerCase(), value);
    } else if (value === true) {
      el.setAttribute(key, "");
    } else if (value !== false && value !== null && value !== undefined) {
      el.setAttribute(key, String(value));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replaces the page's main content and moves focus to it (for screen readers and keyboards). */
export function mount(title, ...nodes) {
  document.title = title ? `${title} · Sesame` : "Sesame";
  const main = document.getElementById("main");
  main.replaceChildren(...nodes.flat().filter(Boolean));
  main.focus({ preventScroll: true });
  const first = main.querySelector("[autofocus]");
  if (first) first.focus();
}

let nextId = 0;

/** A labelled input with a hint and an error slot tied to it by `aria-describedby`. */
export function field({ label, name, type = "text", hint, ...rest }) {
  const id = `f${++nextId}`;
  const hintEl = hint ? h("p", { class: "hint", id: `${id}-hint` }, hint) : null;
  const errorEl = h("p", { class: "field-error", id: `${id}-error`, role: "alert", hidden: true });
  const input = h("input", {
    id, name, type, "aria-describedby": [hintEl && `${id}-hint`, `${id}-error`].filter(Boolean).join(" "),
    ...rest,
  });
  const wrap = h("div", { class: "field" }, h("label", { for: id }, label), input, hintEl, errorEl);
  return {
    wrap, input,
    /** Shows `message` under the field (or clears it with null). */
    error(message) {
      errorEl.textContent = message ?? "";
      errorEl.hidden = !message;
      input.setAttribute("aria-invalid", message ? "true" : "false");
    },
  };
}

/** A form: `fields` (from `field`), a submit button, an error line for the whole form, and
 * `onSubmit(values)` run with the button disabled and a progress note shown. `onSubmit` may
 * throw a `FieldError` to put a message next to one field. */
export function form({ fields, submit, busyText = "Working…", onSubmit, extra = [] }) {
  const status = h("p", { class: "form-error", role: "alert", hidden: true });
  const progress = h("p", { class: "progress", "aria-live": "polite", hidden: true },
    h("span", { class: "spinner", "aria-hidden": "true" }), " ", busyText);
  const button = h("button", { type: "submit", class: "primary" }, submit);
  const el = h("form", { novalidate: true }, fields.map((f) => f.wrap), extra, status, progress,
    h("div", { class: "actions" }, button));
  const byName = Object.fromEntries(fields.map((f) => [f.input.name, f]));
  el.addEventListener("submit", async (event) => {
    event.preventDefault();
    status.hidden = true;
    fields.forEach((f) => f.error(null));
    const values = Object.fromEntries(fields.map((f) => [f.input.name,
      f.input.type === "checkbox" ? f.input.checked : f.input.value]));
    button.disabled = true;
    progress.hidden = false;
    try {
      await onSubmit(values);
    } catch (e) {
      const target = e instanceof FieldError ? byName[e.field] : null;
      if (target) {
        target.error(e.message);
        target.input.focus();
      } else {
        status.textContent = e.message;
        status.hidden = false;
      }
    } finally {
      button.disabled = false;
      progress.hidden = true;
    }
  });
  return { el, status, byName };
}

/** An error that belongs next to one field of a form. */
export class FieldError extends Error {
  constructor(field, message) {
    super(message);
    this.field = field;
  }
}

/** A notice box: `kind` is "info", "success" or "warning". */
export function notice(kind, ...children) {
  return h("div", { class: `notice ${kind}`, role: kind === "warning" ? "alert" : "status" }, ...children);
}

/** A card with a heading. */
export function card(title, ...children) {
  return h("section", { class: "card" }, h("h2", {}, title), ...children);
}

/** Unix seconds as a local date and time. */
export function when(secs) {
  if (!secs) return "never";
  return new Date(secs * 1000).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

/** Lets the browser paint (a progress note) before a long synchronous step (Argon2). */
export function paint() {
  return new Promise((resolve) => requestAnimationFrame(() => setTimeout(resolve, 0)));
}

/** Offers `text` as a download called `filename`. */
export function download(filename, text) {
  const url = URL.createObjectURL(new Blob([text], { type: "text/plain" }));
  const a = h("a", { href: url, download: filename });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

/** The list of backup codes with copy and download buttons: shown once. */
export function backupCodes(codes, username) {
  const text = `Sesame backup codes for ${username}\nEach code works once.\n\n${codes.join("\n")}\n`;
  const copied = h("span", { class: "hint", "aria-live": "polite" });
  return h("div", { class: "backup-codes" },
    notice("warning", "These codes are shown only once. Keep them somewhere safe: each one signs you in or recovers your account once."),
    h("ol", { class: "codes", "data-testid": "backup-codes" }, codes.map((c) => h("li", {}, h("code", {}, c)))),
    h("div", { class: "actions" },
      h("button", { type: "button", onclick: async () => {
        await navigator.clipboard.writeText(text);
        copied.textContent = "Copied.";
      } }, "Copy"),
      h("button", { type: "button", onclick: () => download(`sesame-backup-codes-${username}.txt`, text) }, "Download as text"),
      copied));
}
