// The app: one shell, one view per path, navigation without reloads.

import { api, signedIn, describe, onSessionEnded } from "./api.mjs";
import { signOut } from "./auth.mjs";
import { h, mount, notice } from "./ui.mjs";
import signup from "./pages/signup.mjs";
import signin, { oauthNext, signInAgain } from "./pages/signin.mjs";
import consent from "./pages/consent.mjs";
import recover from "./pages/recover.mjs";
import account from "./pages/account.mjs";
import chat from "./pages/chat.mjs";
import admin from "./pages/admin.mjs";

/** What every view gets: the signed-in user (or null) and navigation. */
export const app = {
  me: null,
  /** Goes to `path` (pushing history unless `replace`). */
  go(path, { replace = false } = {}) {
    if (replace) history.replaceState(null, "", path);
    else history.pushState(null, "", path);
    return render();
  },
  /** Reloads the signed-in user's profile. */
  async loadMe() {
    app.me = (await signedIn()) ? await api("GET", "/api/me") : null;
    nav();
    return app.me;
  },
  /** Called when the session ended (signed out here, elsewhere, or revoked). */
  async signedOut(message) {
    app.me = null;
    app.exportKey = null;
    app.identity = null;
    nav();
    await app.go(`/signin${message ? `?ended=${encodeURIComponent(message)}` : ""}`, { replace: true });
  },
};

/** Views that need a session, and those that need none. */
const views = {
  "/": { auth: null, view: home },
  "/signup": { auth: false, view: signup },
  "/signin": { auth: false, view: signin },
  "/recover": { auth: false, view: recover },
  "/account": { auth: true, view: account },
  "/chat": { auth: true, view: chat },
  "/admin": { auth: true, view: admin },
  "/consent": { auth: true, view: consent },
};

function home() {
  if (app.me) return app.go("/account", { replace: true });
  mount("", h("section", { class: "hero" },
    h("h1", {}, "Accounts you can trust"),
    h("p", { class: "lede" }, "Sign in without your password ever leaving this page: Sesame uses OPAQUE, so the server never sees it and keeps nothing a thief could log in with."),
    h("div", { class: "actions" },
      h("a", { class: "button primary", href: "/signup", "data-nav": true }, "Create an account"),
      h("a", { class: "button", href: "/signin", "data-nav": true }, "Sign in"))));
}

/** The header's links for the current state. */
function nav() {
  const link = (href, text) => h("a", { href, "data-nav": true,
    "aria-current": location.pathname === href ? "page" : null }, text);
  const items = app.me
    ? [link("/account", "Account"), link("/chat", "Chat"), app.me.is_admin ? link("/admin", "Admin") : null,
      h("button", { type: "button", class: "link", "data-testid": "sign-out", onclick: async () => {
        await signOut();
        await app.signedOut();
      } }, "Sign out")]
    : [link("/signin", "Sign in"), link("/signup", "Create account")];
  document.getElementById("nav").replaceChildren(...items.filter(Boolean));
}

async function render() {
  const route = views[location.pathname] ?? null;
  try {
    if (app.me === null) await app.loadMe();
    else nav();
    if (!route) {
      mount("Not found", h("h1", {}, "Page not found"), h("p", {}, h("a", { href: "/", "data-nav": true }, "Go home")));
      return;
    }
    if (route.auth === true && !app.me) {
      const back = location.pathname === "/consent" ? location.pathname + location.search : location.pathname;
      return app.go(`/signin?next=${encodeURIComponent(back)}`, { replace: true });
    }
    // Signed in and sent here by an application: back to it, unless it asked for a new sign-in.
    if (location.pathname === "/signin" && app.me && oauthNext() && !signInAgain()) {
      return location.replace(oauthNext());
    }
    const again = location.pathname === "/signin" && signInAgain() && oauthNext();
    if (route.auth === false && app.me && !again) return app.go("/account", { replace: true });
    await route.view(app);
  } catch (e) {
    mount("Error", h("h1", {}, "Something went wrong"), notice("warning", describe(e)),
      h("button", { type: "button", onclick: () => render() }, "Try again"));
  }
}

document.addEventListener("click", (event) => {
  const a = event.target.closest?.("a[data-nav]");
  if (!a || event.metaKey || event.ctrlKey || event.shiftKey || event.button !== 0) return;
  event.preventDefault();
  app.go(a.getAttribute("href"));
});
window.addEventListener("popstate", () => render());
onSessionEnded(() => {
  if (app.me) app.signedOut("Your session ended. Sign in again.");
});
render();
