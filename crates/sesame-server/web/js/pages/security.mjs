// The account page's security section: password change, passkeys, authenticator app, backup
// codes, security questions. Sensitive actions need a fresh authentication; when the server asks for
// one, the page asks for the password in place and retries.

import { api, describe, ApiError } from "../api.mjs";
import { reauthenticate, changePassword } from "../auth.mjs";
import { E } from "../contract.mjs";
import { rewrapBackup } from "../e2e.mjs";
import { checkPassword } from "../policy.mjs";
import { passkeysCard } from "./passkeys-card.mjs";
import { h, field, form, card, notice, backupCodes, FieldError } from "../ui.mjs";

/** Asks for the password in a modal dialog and re-authenticates; resolves with the export
 * key, or null if the person cancels. */
export function askPassword(app, why) {
  return new Promise((resolve) => {
    const password = field({ label: "Password", name: "password", type: "password",
      autocomplete: "current-password", autofocus: true, required: true });
    const cancel = h("button", { type: "button", onclick: () => close(null) }, "Cancel");
    const { el } = form({
      fields: [password], submit: "Confirm", busyText: "Checking your password in this browser…", extra: [],
      onSubmit: async (v) => {
        try {
          close(await reauthenticate(app.me.username, v.password));
        } catch (e) {
          if (e instanceof ApiError && e.code === E.AUTHENTICATION_FAILED) {
            throw new FieldError("password", "That is not your password.");
          }
          throw new Error(describe(e));
        }
      },
    });
    el.querySelector(".actions").prepend(cancel);
    const dialog = h("dialog", { class: "modal", "aria-labelledby": "reauth-title" },
      h("h2", { id: "reauth-title" }, "Confirm it's you"), h("p", {}, why), el);
    dialog.addEventListener("cancel", () => close(null));
    function close(value) {
      dialog.close();
      dialog.remove();
      resolve(value);
    }
    document.body.append(dialog);
    dialog.showModal();
    password.input.focus();
  });
}

/** Runs `action`; if the server wants a fresh authentication, asks for the password and runs
 * it once more. Returns undefined if the person cancels. */
export async function fresh(app, why, action) {
  try {
    return await action();
  } catch (e) {
    if (!(e instanceof ApiError) || e.code !== E.REAUTHENTICATION_REQUIRED) throw e;
  }
  if ((await askPassword(app, why)) === null) return undefined;
  return action();
}

function passwordCard(app) {
  const current = field({ label: "Current password", name: "current", type: "password", autocomplete: "current-password", required: true });
  const next = field({ label: "New password", name: "next", type: "password", autocomplete: "new-password", required: true });
  const others = field({ label: "Sign out my other sessions", name: "others", type: "checkbox", checked: true });
  const done = h("div", { "aria-live": "polite" });
  const { el } = form({
    fields: [current, next, others], submit: "Change password", busyText: "Securing the new password in this browser…",
    onSubmit: async (v) => {
      const problem = await checkPassword(v.next, app.me.username);
      if (problem) throw new FieldError("next", problem);
      let oldKey;
      try {
        oldKey = await reauthenticate(app.me.username, v.current);
      } catch (e) {
        if (e instanceof ApiError && e.code === E.AUTHENTICATION_FAILED) throw new FieldError("current", "That is not your password.");
        throw new Error(describe(e));
      }
      const { answer, exportKey } = await changePassword(app.me.username, v.next, v.others);
      const backup = await rewrapBackup(oldKey, exportKey);
      app.exportKey = exportKey;
      app.identity = null;
      el.reset();
      done.replaceChildren(notice("success", `Password changed. ${answer.revoked_sessions} other session(s) signed out.`,
        backup === "unreadable" ? " Your message-key backup could not be re-encrypted: your devices will announce new keys." : ""));
    },
  });
  return card("Password", el, done);
}

function totpCard(app) {
  const body = h("div", {});
  const show = () => body.replaceChildren(app.me.totp_enabled ? totpOn(app, show) : totpOff(app, show));
  show();
  return card("Authenticator app", body);
}

function totpOff(app, show) {
  const start = h("button", { type: "button", class: "primary", onclick: async () => {
    let enrol;
    try {
      enrol = await fresh(app, "Turning on two-step sign-in needs your password.", () => api("POST", "/api/generate-qr"));
    } catch (e) {
      start.after(notice("warning", describe(e)));
      return;
    }
    if (!enrol) return;
    const code = field({ label: "Code from the app", name: "code", autocomplete: "one-time-code", inputmode: "numeric", autofocus: true, required: true });
    const { el } = form({
      fields: [code], submit: "Turn on",
      onSubmit: async (v) => {
        try {
          await api("POST", "/api/enable-authenticator", { totpCode: v.code.trim() });
        } catch (e) {
          throw new FieldError("code", e.code === E.INVALID_CODE ? "That code is not right. Enter the current one." : describe(e));
        }
        await app.loadMe();
        show();
      },
    });
    start.replaceWith(h("div", { class: "enrol" },
      h("p", {}, "Scan this with your authenticator app, then enter the code it shows."),
      h("img", { src: enrol.qrCodeUrl, alt: "QR code for your authenticator app", width: 200, height: 200, class: "qr" }),
      h("p", {}, "Or type this secret: ", h("code", { "data-testid": "totp-secret", class: "secret" }, enrol.secret)),
      el));
  } }, "Turn on");
  return h("div", {}, h("p", {}, "Off. Turn it on to ask for a code from your phone at every sign-in."), start);
}

function totpOn(app, show) {
  const code = field({ label: "Current code (to turn it off)", name: "code", autocomplete: "one-time-code", inputmode: "numeric", required: true });
  const { el } = form({
    fields: [code], submit: "Turn off",
    onSubmit: async (v) => {
      try {
        await fresh(app, "Turning off two-step sign-in needs your password.",
          () => api("POST", "/api/2fa/totp/disable", { totpCode: v.code.trim() }));
      } catch (e) {
        throw new FieldError("code", e.code === E.INVALID_CODE ? "That code is not right." : describe(e));
      }
      await app.loadMe();
      show();
    },
  });
  return h("div", {}, h("p", { "data-testid": "totp-state" }, "On: every sign-in asks for a code."), el);
}

function backupCard(app) {
  const out = h("div", {});
  const button = h("button", { type: "button", onclick: async () => {
    try {
      const r = await fresh(app, "New backup codes need your password.", () => api("POST", "/api/backup-codes/regenerate"));
      if (r) out.replaceChildren(backupCodes(r.backupCodes, app.me.username));
    } catch (e) {
      out.replaceChildren(notice("warning", describe(e)));
    }
  } }, "Make new codes");
  return card("Backup codes", h("p", {}, `${app.me.backup_codes_left} unused. New codes replace all the old ones.`), button, out);
}

async function questionsCard(app) {
  const { questions } = await api("GET", "/api/security-questions/catalog");
  const pairs = [0, 1].map((i) => {
    const id = `q${i}`;
    const select = h("select", { id, name: id }, questions.map((q, j) => h("option", { value: q, selected: i === j }, q)));
    const answer = field({ label: `Answer ${i + 1}`, name: `a${i}`, autocomplete: "off", required: true });
    return { select, answer, wrap: h("div", { class: "field" }, h("label", { for: id }, `Question ${i + 1}`), select) };
  });
  const done = h("div", { "aria-live": "polite" });
  const { el } = form({
    fields: pairs.map((p) => p.answer), submit: "Save questions",
    extra: [],
    onSubmit: async () => {
      const body = { questions: pairs.map((p) => ({ question: p.select.value, answer: p.answer.input.value })) };
      await fresh(app, "Changing recovery questions needs your password.", () => api("PUT", "/api/security-questions", body))
        .catch((e) => { throw new Error(describe(e)); });
      el.reset();
      done.replaceChildren(notice("success", "Saved."));
    },
  });
  pairs.forEach((p, i) => el.insertBefore(p.wrap, p.answer.wrap));
  return card("Recovery questions", h("p", {}, `${app.me.security_questions} set. With an authenticator code, they can recover the account.`), el, done);
}

/** The security section of the account page. */
export async function securitySection(app) {
  return h("div", { class: "stack" }, passwordCard(app), await passkeysCard(app), totpCard(app), backupCard(app),
    await questionsCard(app));
}
