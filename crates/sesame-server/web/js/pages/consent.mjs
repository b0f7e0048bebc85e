// Consent: an application registered with this server asks to sign the user in. The server
// sent the browser here with a ticket (`/consent?ticket=…`) on the application's first use;
// the answer is posted back and the browser goes where the server says (the application's
// redirect URI, with a code or `access_denied`).

import { api, describe, ApiError } from "../api.mjs";
import { E } from "../contract.mjs";
import { h, mount, notice } from "../ui.mjs";

/** What each scope lets the application see, in words. */
const SCOPES = {
  openid: "Your Sesame account id",
  profile: "Your username and display name",
  email: "Your email address",
  groups: "The groups you belong to",
  offline_access: "Access while you are away",
};

export default async function consent() {
  const ticket = new URLSearchParams(location.search).get("ticket") ?? "";
  const path = `/api/oauth2/consent/${encodeURIComponent(ticket)}`;
  let ask;
  try {
    ask = await api("GET", path);
  } catch (e) {
    const gone = e instanceof ApiError && e.code === E.NOT_FOUND;
    mount("Sign in with Sesame", h("h1", {}, "Sign in with Sesame"),
      notice("warning", gone ? "This request has expired. Go back to the application and try again." : describe(e)));
    return;
  }
  const status = h("p", { class: "form-error", role: "alert", hidden: true });
  const decide = (approve) => async () => {
    for (const b of buttons) b.disabled = true;
    try {
      const next = await api("POST", path, { approve });
      location.assign(next.redirect_to);
    } catch (e) {
      status.textContent = describe(e);
      status.hidden = false;
      for (const b of buttons) b.disabled = false;
    }
  };
  const buttons = [
    h("button", { type: "button", class: "primary", onclick: decide(true) }, "Allow"),
    h("button", { type: "button", onclick: decide(false) }, "Deny"),
  ];
  mount("Sign in with Sesame", h("h1", {}, `Sign in to ${ask.client_name}`),
    h("p", {}, `${ask.client_name} will see:`),
    h("ul", { "data-testid": "consent-scopes" }, ask.scopes.map((s) => h("li", {}, SCOPES[s] ?? s))),
    status,
    h("div", { class: "actions" }, buttons));
}
