// Sign in: OPAQUE in the page, then the second factor when the account has one. An unknown
// user and a wrong password get the same message (the server cannot tell them apart either).

import { describe, ApiError } from "../api.mjs";
import { signIn, secondFactor } from "../auth.mjs";
import { E } from "../contract.mjs";
import { h, mount, field, form, notice, FieldError } from "../ui.mjs";

/** Where to go after signing in: `?next=` when it is a path of this app. */
function next() {
  const target = new URLSearchParams(location.search).get("next") ?? "/account";
  return /^\/[a-z]*$/.test(target) ? target : "/account";
}

export default function signin(app) {
  const ended = new URLSearchParams(location.search).get("ended");
  const username = field({ label: "Username", name: "username", autocomplete: "username",
    autofocus: true, required: true, autocapitalize: "none", spellcheck: "false" });
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
      await app.loadMe();
      await app.go(next(), { replace: true });
    },
  });
  mount("Sign in", h("h1", {}, "Sign in"),
    ended ? notice("info", ended) : null,
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
      await app.loadMe();
      await app.go(next(), { replace: true });
    },
  });
  mount("Second step", h("h1", {}, "One more step"),
    h("p", {}, "Your account is protected by a second factor."), el);
}
