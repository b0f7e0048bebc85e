// Sign in: OPAQUE in the page, then the second factor when the account has one. An unknown
// user and a wrong password get the same message (the server cannot tell them apart either).

import { describe, ApiError } from "../api.mjs";
import { signIn, secondFactor } from "../auth.mjs";
import { E } from "../contract.mjs";
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

export default function signin(app) {
  const ended = new URLSearchParams(location.search).get("ended");
  const username = field({ label: "Username", name: "username", autocomplete: "username",
    autofocus: true, required: true, autocapitalize: "none", spellcheck: "false",
    value: new URLSearchParams(location.search).get("login_hint") ?? null });
  const password = field({ label: "Password", name: "password", type: "password",
    autocomplete: "current-password", required: true });
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
      await proceed(app);
    },
  });
  mount("Sign in", h("h1", {}, "Sign in"),
    ended ? notice("info", ended) : null,
    oauthNext() ? notice("info", "An application asked you to sign in with Sesame.") : null,
    f.el,
    h("p", { class: "aside" }, h("a", { href: "/recover", "data-nav": true }, "Forgot your password?"),
      " · ", h("a", { href: "/signup", "data-nav": true }, "Create an account")));
}

function secondStep(app, ticket) {
  const code = field({ label: "Authenticator code or backup code", name: "code",
    autocomplete: "one-time-code", autofocus: true, required: true, autocapitalize: "none",
    hint: "The 6-digit code from your authenticator app, or one of your backup codes." });
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
        if (e instanceof ApiError && e.code === E.MFA_EXPIRED) {
          throw new Error("This sign-in took too long. Start again.");
        }
        throw new Error(describe(e));
      }
      await proceed(app);
    },
  });
  mount("Second step", h("h1", {}, "One more step"),
    h("p", {}, "Your account is protected by a second factor."), el);
}
