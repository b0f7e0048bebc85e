// The account page's "Passkeys" card: register one (named), list them with their last use,
// rename and delete them, and require a phishing-resistant second factor. Registering,
// deleting and the requirement need a fresh authentication (`fresh` asks for the password).

import { api, describe, ApiError } from "../api.mjs";
import { E } from "../contract.mjs";
import { supported, onIpAddress, registerPasskey, cancelled } from "../passkeys.mjs";
import { h, field, form, card, notice, when, FieldError } from "../ui.mjs";
import { fresh } from "./security.mjs";

/** What to say when registering did not work. */
function registerProblem(e) {
  if (cancelled(e)) return "No passkey was made. Try again when you are ready.";
  if (e instanceof DOMException && e.name === "InvalidStateError") return "This device already holds a passkey for your account.";
  if (e instanceof ApiError && e.code === E.PASSKEY_INVALID) return "The passkey could not be verified. Try again.";
  if (e instanceof ApiError && e.code === E.TOO_MANY_PASSKEYS) return "You have the most passkeys an account may have. Delete one first.";
  return describe(e);
}

function renameForm(app, passkey, redraw) {
  const name = field({ label: "New name", name: "name", value: passkey.name, maxlength: 64, required: true });
  const { el } = form({
    fields: [name], submit: "Save name",
    onSubmit: async (v) => {
      if (!v.name.trim()) throw new FieldError("name", "Give it a name.");
      try {
        await api("PUT", `/api/passkeys/${encodeURIComponent(passkey.id)}`, { name: v.name.trim() });
      } catch (e) {
        throw new FieldError("name", e.code === E.INVALID_PASSKEY_NAME ? "1 to 64 characters, please." : describe(e));
      }
      await redraw();
    },
  });
  return el;
}

function row(app, passkey, redraw, say) {
  const item = h("li", { class: "passkey", "data-testid": "passkey" });
  const rename = h("button", { type: "button", onclick: () => {
    rename.disabled = true;
    item.append(renameForm(app, passkey, redraw));
  } }, "Rename");
  const remove = h("button", { type: "button", class: "danger", onclick: async () => {
    try {
      const done = await fresh(app, "Deleting a passkey needs your password.",
        () => api("DELETE", `/api/passkeys/${encodeURIComponent(passkey.id)}`));
      if (done === undefined) return;
      await redraw();
      say(notice("success", `Passkey “${passkey.name}” deleted.`));
    } catch (e) {
      say(notice("warning", e.code === E.PASSKEY_REQUIRED
        ? "Your account requires a passkey: turn that off before deleting the last one." : describe(e)));
    }
  } }, "Delete");
  item.append(
    h("strong", { "data-testid": "passkey-name" }, passkey.name),
    h("p", { class: "hint" }, `Added ${when(passkey.created_at)} · last used ${when(passkey.last_used_at)}`,
      passkey.backup_eligible ? " · synced across devices" : ""),
    h("div", { class: "actions" }, rename, remove));
  return item;
}

function requireToggle(app, list, redraw, say) {
  const toggle = field({ label: "Require a passkey as the second step", name: "require", type: "checkbox",
    checked: list.phishing_resistant_required, disabled: list.passkeys.length === 0 && !list.phishing_resistant_required,
    hint: "Authenticator codes then no longer sign you in: they can be phished. Backup codes still work." });
  const box = toggle.input;
  box.addEventListener("change", async () => {
    const required = box.checked;
    try {
      const done = await fresh(app, "Changing how you sign in needs your password.",
        () => api("PUT", "/api/2fa/phishing-resistant", { required }));
      if (done === undefined) box.checked = !required;
      else await redraw();
    } catch (e) {
      box.checked = !required;
      say(notice("warning", e.code === E.NO_PASSKEY ? "Add a passkey first." : describe(e)));
    }
  });
  return toggle.wrap;
}

function registerForm(app, redraw, say) {
  const name = field({ label: "Name for the new passkey", name: "name", value: "This device", maxlength: 64, required: true,
    hint: "So you can tell your passkeys apart: “Laptop”, “Phone”." });
  const { el } = form({
    fields: [name], submit: "Add a passkey", busyText: "Follow your browser's instructions…",
    onSubmit: async (v) => {
      if (!v.name.trim()) throw new FieldError("name", "Give it a name.");
      let made;
      try {
        made = await fresh(app, "Adding a passkey needs your password.", () => registerPasskey(v.name.trim()));
      } catch (e) {
        throw new Error(registerProblem(e));
      }
      if (made === undefined) return;
      await redraw();
      say(notice("success", `Passkey “${made.name}” added. You can now sign in with it.`));
    },
  });
  return el;
}

/** The "Passkeys" card. */
export async function passkeysCard(app) {
  const body = h("div", {});
  const said = h("div", { "aria-live": "polite" });
  const say = (node) => said.replaceChildren(node);
  const redraw = async () => {
    const list = await api("GET", "/api/passkeys");
    body.replaceChildren(
      list.passkeys.length
        ? h("ul", { class: "passkeys" }, list.passkeys.map((p) => row(app, p, redraw, say)))
        : h("p", {}, "None yet. A passkey signs you in with this device's screen lock or a security key, and cannot be phished."),
      requireToggle(app, list, redraw, say),
      registerForm(app, redraw, say));
  };
  if (!supported()) {
    const why = onIpAddress()
      ? `Passkeys need a domain name: open this page at http://localhost:${location.port || "80"}/ (or the server's name) to add one.`
      : "This browser cannot use passkeys.";
    return card("Passkeys", notice("info", why));
  }
  await redraw();
  return card("Passkeys", body, said);
}
