// Sign up: the name first (checked as typed, then with the server), then the password (the
// rules shown before typing and checked as typed), client-side OPAQUE, email verification
// when the server sends mail, and the backup codes, shown once.

import { pub, describe, ApiError } from "../api.mjs";
import { checkAvailable, signUp, signIn } from "../auth.mjs";
import { E } from "../contract.mjs";
import { registrationKeys } from "../messaging.mjs";
import { checkUsername, checkPassword, PASSWORD_RULES } from "../policy.mjs";
import { h, mount, field, form, notice, backupCodes, FieldError } from "../ui.mjs";

/** Server errors that belong to the username field. */
const USERNAME_CODES = [E.USERNAME_TAKEN, E.USERNAME_TOO_SHORT, E.USERNAME_TOO_LONG,
  E.USERNAME_INVALID_CHARACTER, E.USERNAME_INVALID_START, E.USERNAME_RESERVED];

export default function signup(app) {
  const username = field({ label: "Username", name: "username", autocomplete: "username",
    hint: "3 to 32 characters: letters, digits, “.”, “_” and “-”.", autofocus: true, required: true,
    autocapitalize: "none", spellcheck: "false" });
  const email = field({ label: "Email (optional)", name: "email", type: "email", autocomplete: "email",
    hint: "For recovery codes. If this server sends mail, you will confirm it with a code." });
  username.input.addEventListener("input", () => {
    const { problem } = checkUsername(username.input.value);
    username.error(username.input.value && problem ? problem : null);
  });
  const { el } = form({
    fields: [username, email], submit: "Continue", busyText: "Checking the name…",
    onSubmit: async (v) => {
      const { problem } = checkUsername(v.username);
      if (problem) throw new FieldError("username", problem);
      try {
        await checkAvailable(v.username.trim());
      } catch (e) {
        if (e instanceof ApiError && USERNAME_CODES.includes(e.code)) {
          throw new FieldError("username", e.code === E.USERNAME_TAKEN ? "That name is taken. Choose another." : e.message);
        }
        throw new Error(describe(e));
      }
      passwordStep(app, v.username.trim(), v.email.trim());
    },
  });
  mount("Create an account", h("h1", {}, "Create an account"), el,
    h("p", { class: "aside" }, "Already have one? ", h("a", { href: "/signin", "data-nav": true }, "Sign in")));
}

function passwordStep(app, username, email) {
  const password = field({ label: "Password", name: "password", type: "password",
    autocomplete: "new-password", autofocus: true, required: true });
  const confirm = field({ label: "Password again", name: "confirm", type: "password",
    autocomplete: "new-password", required: true });
  let typed = 0;
  password.input.addEventListener("input", async () => {
    const mine = ++typed;
    const problem = password.input.value ? await checkPassword(password.input.value, username) : null;
    if (mine === typed) password.error(problem);
  });
  const { el } = form({
    fields: [password, confirm], submit: "Create account", busyText: "Securing your password in this browser…",
    onSubmit: async (v) => {
      const problem = await checkPassword(v.password, username);
      if (problem) throw new FieldError("password", problem);
      if (v.password !== v.confirm) throw new FieldError("confirm", "The two passwords differ.");
      let answer;
      try {
        ({ answer } = await signUp(username, v.password, email || null, registrationKeys));
      } catch (e) {
        throw new Error(describe(e));
      }
      if (answer.status === "pending") return verifyStep(app, answer, v.password);
      await finished(app, answer, v.password);
    },
  });
  mount("Choose a password", h("h1", {}, "Choose a password"),
    h("p", {}, "Signing up as ", h("strong", { "data-testid": "signup-name" }, username), "."),
    h("div", { class: "rules" }, h("p", {}, "Your password must be:"),
      h("ul", {}, PASSWORD_RULES.map((r) => h("li", {}, r)))),
    notice("info", "Your password stays in this page: it is stretched here and never sent to the server."),
    el);
}

function verifyStep(app, answer, password) {
  const code = field({ label: "Code from the email", name: "code", autocomplete: "one-time-code",
    inputmode: "numeric", autofocus: true, required: true });
  const { el } = form({
    fields: [code], submit: "Confirm email",
    onSubmit: async (v) => {
      try {
        await pub("POST", "/api/verify-email", { username: answer.username, code: v.code.trim() });
      } catch (e) {
        throw new FieldError("code", describe(e));
      }
      await finished(app, answer, password);
    },
  });
  const resend = h("button", { type: "button", class: "link", onclick: async () => {
    await pub("POST", "/api/verify-email/resend", { username: answer.username });
    resend.textContent = "Sent again.";
  } }, "Send the code again");
  mount("Confirm your email", h("h1", {}, "Confirm your email"),
    h("p", {}, "We sent a code to your email address. Enter it to activate the account."), el, resend);
}

/** Shows the backup codes, then signs in with the same password. */
async function finished(app, answer, password) {
  let signedIn = null;
  try {
    const r = await signIn(answer.username, password);
    if (r.done) signedIn = r.done;
    app.exportKey = r.exportKey;
  } catch {
    signedIn = null;
  }
  if (signedIn) await app.loadMe();
  mount("Account created", h("h1", {}, "Your account is ready"),
    h("p", {}, "Welcome, ", h("strong", {}, answer.username), "."),
    backupCodes(answer.backupCodes, answer.username),
    h("div", { class: "actions" },
      h("a", { class: "button primary", href: signedIn ? "/account" : "/signin", "data-nav": true },
        signedIn ? "I saved them: go to my account" : "I saved them: sign in")));
}
