// Forgot password: the new password is chosen and stretched here (client-side OPAQUE, the
// server never sees it), then proved with one of the recovery paths of the API
// (docs/api.md §13): a backup code; the emailed code (with an authenticator or backup code
// when the account has an authenticator); or an authenticator code with the security answers.

import * as opaque from "../../vendor/opaque.mjs";
import { pub, describe, ApiError } from "../api.mjs";
import { E } from "../contract.mjs";
import { checkUsername, checkPassword } from "../policy.mjs";
import { h, mount, field, form, notice, backupCodes, paint, FieldError } from "../ui.mjs";

export default function recover(app) {
  const username = field({ label: "Username", name: "username", autocomplete: "username", autofocus: true, required: true, autocapitalize: "none" });
  const password = field({ label: "New password", name: "password", type: "password", autocomplete: "new-password", required: true });
  const { el } = form({
    fields: [username, password], submit: "Continue", busyText: "Securing the new password in this browser…",
    onSubmit: async (v) => {
      const name = v.username.trim();
      const { problem } = checkUsername(name);
      if (problem) throw new FieldError("username", problem);
      const weak = await checkPassword(v.password, name);
      if (weak) throw new FieldError("password", weak);
      await opaque.ready;
      const pw = v.password.normalize("NFKC");
      const { clientRegistrationState, registrationRequest } = opaque.client.startRegistration({ password: pw });
      let started;
      try {
        started = await pub("POST", "/api/recover/start", { username: name, registration_request: registrationRequest });
      } catch (e) {
        throw new Error(describe(e));
      }
      const ch = started.registration_challenge;
      await paint();
      const r = opaque.client.finishRegistration({ clientRegistrationState, registrationResponse: ch.registration_response, password: pw, keyStretching: ch.key_stretching });
      if (r.serverStaticPublicKey !== ch.server_public_key) throw new Error("The server's key does not match its answer. Recovery was stopped.");
      proofStep(app, name, started, { registration_record: r.registrationRecord, key_stretching: ch.key_stretching });
    },
  });
  mount("Recover your account", h("h1", {}, "Forgot your password?"),
    h("p", {}, "Choose a new password, then prove the account is yours with a backup code, the code we email you, or your authenticator app and security answers."),
    el);
}

/** The ways to prove the account, as tabs. */
function proofStep(app, username, started, record) {
  const methods = [
    ["Backup code", () => [field({ label: "Backup code", name: "backup_code", autocomplete: "off", autofocus: true, required: true })]],
    ["Emailed code", () => [
      field({ label: "Code from the email", name: "email_code", autocomplete: "one-time-code", inputmode: "numeric", required: true, hint: started.message }),
      field({ label: "Authenticator code (if you use one)", name: "totp_code", autocomplete: "one-time-code", inputmode: "numeric" })]],
    ["Authenticator and questions", () => [
      field({ label: "Authenticator code", name: "totp_code", autocomplete: "one-time-code", inputmode: "numeric", required: true }),
      ...started.questions.map((q, i) => field({ label: q, name: `answer${i}`, autocomplete: "off", required: true }))]],
    ["Code from an administrator", () => [field({ label: "Reset code", name: "reset_code", autocomplete: "off", required: true, hint: "The one-time code your server's administrator gave you (xxxxx-xxxxx-xxxxx-xxxxx)." })]],
  ];
  const panel = h("div", {});
  const tabs = methods.map(([label, fields], i) => h("button", { type: "button", role: "tab", class: "tab",
    "aria-selected": i === 0 ? "true" : "false", onclick: (ev) => {
      tabs.forEach((t) => t.setAttribute("aria-selected", t === ev.currentTarget ? "true" : "false"));
      show(fields());
    } }, label));
  const show = (fields) => panel.replaceChildren(form({
    fields, submit: "Reset password",
    onSubmit: async (v) => finish(app, username, started, record, v),
  }).el);
  show(methods[0][1]());
  mount("Prove it's you", h("h1", {}, "Prove it's you"),
    h("div", { role: "tablist", class: "tabs", "aria-label": "Recovery method" }, tabs), panel);
}

async function finish(app, username, started, record, v) {
  const body = { recovery_id: started.recovery_id, ...record };
  if (v.backup_code) body.backup_code = v.backup_code.trim();
  if (v.email_code) body.email_code = v.email_code.trim();
  if (v.totp_code) body.totp_code = v.totp_code.trim();
  if (v.reset_code) body.reset_code = v.reset_code.trim();
  const answers = Object.keys(v).filter((k) => k.startsWith("answer")).sort().map((k) => v[k]);
  if (answers.length) body.answers = answers;
  let done;
  try {
    done = await pub("POST", "/api/recover/finish", body);
  } catch (e) {
    if (e instanceof ApiError && e.code === E.RECOVERY_FAILED) throw new Error("That did not check out. Check the codes and answers and try again.");
    if (e instanceof ApiError && e.code === E.RECOVERY_EXPIRED) throw new Error("This recovery has ended. Start again.");
    throw new Error(describe(e));
  }
  mount("Password reset", h("h1", {}, "Your password was reset"),
    notice("success", "Every session of the account was signed out. Sign in with the new password."),
    backupCodes(done.backupCodes, username),
    h("div", { class: "actions" }, h("a", { class: "button primary", href: "/signin", "data-nav": true }, "Sign in")));
}
