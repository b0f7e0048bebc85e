// Sign in: OPAQUE in the page, then the second factor when the account has one (a passkey, an
// authenticator code or a backup code); or a passkey alone, from the username field's autofill
// or the "Use a passkey" button (named apart from the form's own "Sign in"). An unknown user and a wrong password get the same
// message (the server cannot tell them apart either).

import { describe, ApiError } from "../api.mjs";
import { signIn, secondFactor } from "../auth.mjs";
import { E } from "../contract.mjs";
import {
  supported, autofillAvailable, passkeySignIn, passkeySecondFactor, abortAutofill, cancelled,
} from "../passkeys.mjs";
import { h, mount, field, form, notice, FieldError } from "../ui.mjs";

/** An OpenID Connect authorization request of this server to come back to (`?next=`), as
 * a same-origin path, or null. Anything else — another origin, another path — is ignored. */
export function oauthNext() {
  const target = new URLSearchParams(location.search).get("next");
  if (!target || !target.startsWith("/oauth2/authorize?")) return null;
  let url;
  try {
    url = new URL(target, location.origin);
  } catch {
    return null;
  }
  if (url.origin !== location.origin || url.pathname !== "/oauth2/authorize") return null;
  return url.pathname + url.search;
}

/** Whether the authorization request asked for a new sign-in (`prompt=login`, `max_age`). */
export function signInAgain() {
  return new URLSearchParams(location.search).get("login") === "1";
}

/** Where to go after signing in: `?next=` when it is a path of this app. */
function next() {
  const target = new URLSearchParams(location.search).get("next") ?? "/account";
  const page = /^\/[a-z]*$/.test(target) || /^\/consent\?ticket=oct_[A-Za-z0-9_-]+$/.test(target);
  return page ? target : "/account";
}

/** Goes on after signing in: back to the authorization request (a full navigation: the
 * server answers it), or to a page of the app. */
async function proceed(app) {
  const oauth = oauthNext();
  if (oauth) {
    location.assign(oauth);
    return;
  }
  await app.loadMe();
  await app.go(next(), { replace: true });
}

async function signedIn(app) {
  abortAutofill();
  await proceed(app);
}

/** What to say when a passkey did not sign anyone in. */
function passkeyProblem(e) {
  if (cancelled(e)) return "No passkey was used. Try again, or sign in with your password.";
  if (e instanceof ApiError && e.code === E.AUTHENTICATION_FAILED) return "That passkey is not accepted here.";
  if (e instanceof ApiError && e.code === E.PASSKEY_CEREMONY_EXPIRED) return "That took too long. Try again.";
  return describe(e);
}

/** Offers the account's passkeys in the username field's autofill, while the page is open.
 * After a passkey the server refused (or a ceremony that expired), it offers them again. */
async function offerAutofill(app, problem) {
  if (!(await autofillAvailable())) return;
  try {
    await passkeySignIn({ conditional: true });
    await signedIn(app);
  } catch (e) {
    if (cancelled(e) || !document.body.contains(problem)) return;
    problem.replaceChildren(notice("warning", passkeyProblem(e)));
    const again = e instanceof ApiError
      && (e.code === E.AUTHENTICATION_FAILED || e.code === E.PASSKEY_CEREMONY_EXPIRED);
    if (again) offerAutofill(app, problem);
  }
}

function passkeyButton(app, problem) {
  if (!supported()) return null;
  const button = h("button", { type: "button", "data-testid": "passkey-sign-in", onclick: async () => {
    button.disabled = true;
    problem.replaceChildren();
    try {
      await passkeySignIn();
      await signedIn(app);
    } catch (e) {
      problem.replaceChildren(notice("warning", passkeyProblem(e)));
      offerAutofill(app, problem);
    } finally {
      button.disabled = false;
    }
  } }, "Use a passkey");
  return h("div", { class: "passkey-sign-in" },
    h("p", { class: "aside" }, "Or sign in with a passkey, without your password:"),
    h("div", { class: "actions" }, button));
}

export default function signin(app) {
  const ended = new URLSearchParams(location.search).get("ended");
  const username = field({ label: "Username", name: "username", autocomplete: "username webauthn",
    autofocus: true, required: true, autocapitalize: "none", spellcheck: "false",
    value: new URLSearchParams(location.search).get("login_hint") ?? null });
  const password = field({ label: "Password", name: "password", type: "password",
    autocomplete: "current-password", required: true });
  const problem = h("div", { "aria-live": "polite" });
  const f = form({
    fields: [username, password], submit: "Sign in", busyText: "Checking your password in this browser…",
    onSubmit: async (v) => {
      if (!v.username.trim()) throw new FieldError("username", "Enter your username.");
      if (!v.password) throw new FieldError("password", "Enter your password.");
      let r;
      try {
        r = await signIn(v.username.trim(), v.password);
      } catch (e) {
        if (e instanceof ApiError && e.code === E.AUTHENTICATION_FAILED) {
          password.input.value = "";
          throw new FieldError("password", "Wrong username or password.");
        }
        throw new Error(describe(e));
      }
      app.exportKey = r.exportKey;
      if (r.secondFactor) return secondStep(app, r.secondFactor);
      await signedIn(app);
    },
  });
  mount("Sign in", h("h1", {}, "Sign in"),
    ended ? notice("info", ended) : null,
    oauthNext() ? notice("info", "An application asked you to sign in with Sesame.") : null,
    f.el,
    problem,
    passkeyButton(app, problem),
    h("p", { class: "aside" }, h("a", { href: "/recover", "data-nav": true }, "Forgot your password?"),
      " · ", h("a", { href: "/signup", "data-nav": true }, "Create an account")));
  offerAutofill(app, problem);
}

/** The passkey choice of the second step, when the account has one. */
function passkeyStep(app, ticket) {
  const problem = h("div", { "aria-live": "polite" });
  const button = h("button", { type: "button", class: "primary", onclick: async () => {
    button.disabled = true;
    problem.replaceChildren();
    try {
      await passkeySecondFactor(ticket.mfa_token);
      await signedIn(app);
    } catch (e) {
      const expired = e instanceof ApiError && e.code === E.MFA_EXPIRED;
      const rejected = e instanceof ApiError && e.code === E.PASSKEY_REJECTED;
      problem.replaceChildren(notice("warning", expired ? "This sign-in took too long. Start again."
        : rejected ? "That passkey was not accepted. Try again, or use a backup code." : passkeyProblem(e)));
    } finally {
      button.disabled = false;
    }
  } }, "Use a passkey");
  return h("div", { class: "stack" }, h("div", { class: "actions" }, button), problem);
}

function secondStep(app, ticket) {
  abortAutofill();
  const methods = ticket.methods ?? [];
  const totp = methods.includes("totp");
  const code = field({ label: totp ? "Authenticator code or backup code" : "Backup code", name: "code",
    autocomplete: "one-time-code", autofocus: !methods.includes("passkey"), required: true, autocapitalize: "none",
    hint: totp ? "The 6-digit code from your authenticator app, or one of your backup codes."
      : "One of the backup codes you saved when you created the account." });
  const { el } = form({
    fields: [code], submit: "Continue",
    onSubmit: async (v) => {
      if (!v.code.trim()) throw new FieldError("code", "Enter a code.");
      try {
        await secondFactor(ticket.mfa_token, v.code);
      } catch (e) {
        if (e instanceof ApiError && e.code === E.INVALID_CODE) {
          code.input.value = "";
          throw new FieldError("code", "That code is not right. Try the current one.");
        }
        if (e instanceof ApiError && e.code === E.PHISHING_RESISTANT_REQUIRED) {
          throw new FieldError("code", "This account needs a passkey (or a backup code), not an authenticator code.");
        }
        if (e instanceof ApiError && e.code === E.MFA_EXPIRED) {
          throw new Error("This sign-in took too long. Start again.");
        }
        throw new Error(describe(e));
      }
      await signedIn(app);
    },
  });
  const passkey = methods.includes("passkey") && supported() ? passkeyStep(app, ticket) : null;
  mount("Second step", h("h1", {}, "One more step"),
    h("p", {}, "Your account is protected by a second factor."),
    passkey, passkey ? h("p", {}, "Or use a code:") : null, el);
}
