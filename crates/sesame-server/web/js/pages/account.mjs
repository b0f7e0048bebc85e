// The account page: profile, security (security.mjs), sessions, recent sign-ins, deletion.

import { api, describe, ApiError } from "../api.mjs";
import { E } from "../contract.mjs";
import { signOut } from "../auth.mjs";
import { h, mount, field, form, card, notice, when } from "../ui.mjs";
import { securitySection, fresh } from "./security.mjs";

function profileCard(app) {
  const p = app.me.profile ?? {};
  const name = field({ label: "Display name", name: "display_name", value: p.display_name ?? "", autocomplete: "name", maxlength: 64 });
  const bio = field({ label: "About you", name: "bio", value: p.bio ?? "", maxlength: 280 });
  const done = h("div", { "aria-live": "polite" });
  const { el } = form({
    fields: [name, bio], submit: "Save profile",
    onSubmit: async (v) => {
      try {
        await api("PUT", "/api/me", { display_name: v.display_name.trim() || null, bio: v.bio.trim() || null });
      } catch (e) {
        throw new Error(describe(e));
      }
      await app.loadMe();
      done.replaceChildren(notice("success", "Saved."));
    },
  });
  return card("Profile",
    h("dl", { class: "facts" },
      h("dt", {}, "Username"), h("dd", { "data-testid": "me-username" }, app.me.username),
      h("dt", {}, "Member since"), h("dd", {}, when(app.me.created_at)),
      h("dt", {}, "Email"), h("dd", {}, app.me.email ?? "none")),
    el, done);
}

/** Changing the email address: a code goes to the new address, and entering it makes the change. */
function emailCard(app) {
  const done = h("div", { "aria-live": "polite" });
  const confirmStep = () => form({
    fields: [field({ label: "Code from the email", name: "code", autocomplete: "one-time-code", inputmode: "numeric", required: true })],
    submit: "Confirm the new address",
    onSubmit: async (v) => {
      let changed;
      try {
        changed = await api("POST", "/api/me/email/verify", { code: v.code.trim() });
      } catch (e) {
        if (e instanceof ApiError && e.code === E.CODE_EXPIRED) throw new Error("That code has expired. Ask for a new one.");
        throw new Error(describe(e));
      }
      await app.loadMe();
      done.replaceChildren(notice("success", `Your email address is now ${changed.email}.`));
    },
  }).el;
  const { el } = form({
    fields: [field({ label: "New email address", name: "email", type: "email", autocomplete: "email", required: true, maxlength: 254 })],
    submit: "Send a code",
    onSubmit: async (v) => {
      try {
        const sent = await fresh(app, "Changing your email address needs your password.", () => api("POST", "/api/me/email", { email: v.email }));
        if (!sent) return;
      } catch (e) {
        throw new Error(describe(e));
      }
      done.replaceChildren(notice("info", `We sent a code to ${v.email}. Your address changes when you enter it.`), confirmStep());
    },
  });
  return card("Email address",
    h("p", {}, "Used for recovery codes. It changes only once you enter the code we send to the new address."),
    el, done);
}

/** A short name for a browser or client from its User-Agent. */
function device(ua) {
  if (!ua) return "Unknown device";
  const known = [["Edg/", "Edge"], ["Firefox/", "Firefox"], ["Chrome/", "Chrome"], ["Safari/", "Safari"], ["sesame", "Sesame CLI"]];
  const found = known.find(([needle]) => ua.includes(needle));
  return found ? found[1] : ua.slice(0, 40);
}

async function sessionsCard(app) {
  const body = h("div", {});
  const load = async () => {
    const { sessions } = await api("GET", "/api/sessions");
    const rows = sessions.map((s) => h("tr", { "data-session": s.id },
      h("td", {}, device(s.user_agent), s.current ? h("span", { class: "badge" }, "this browser") : null),
      h("td", {}, s.client_addr ?? "—"),
      h("td", {}, when(s.last_seen_at)),
      h("td", {}, s.current ? null : h("button", { type: "button", class: "small", onclick: async () => {
        await api("DELETE", `/api/sessions/${encodeURIComponent(s.id)}`);
        await load();
      } }, "Sign out"))));
    body.replaceChildren(
      h("table", { class: "table" },
        h("caption", { class: "visually-hidden" }, "Your sessions"),
        h("thead", {}, h("tr", {}, ["Device", "Address", "Last used", ""].map((t) => h("th", { scope: "col" }, t)))),
        h("tbody", {}, rows)),
      h("div", { class: "actions" }, h("button", { type: "button", onclick: async () => {
        await api("POST", "/api/logout-all");
        await signOut().catch(() => {});
        await app.signedOut("You were signed out everywhere.");
      } }, "Sign out everywhere")));
  };
  await load();
  return card("Where you're signed in", body);
}

/** What an audit event means to the person it is about (the name itself otherwise). */
const EVENTS = {
  "register": "Account created",
  "login.success": "Signed in",
  "login.failure": "Failed sign-in",
  "login.banned": "Sign-in refused: account banned",
  "login.second_factor_required": "Password accepted, second step asked",
  "logout": "Signed out",
  "logout_all": "Signed out everywhere",
  "session.revoked": "A session was signed out",
  "recovery.start": "Account recovery started",
  "recovery.success": "Password reset by recovery",
  "recovery.failure": "Failed recovery attempt",
  "protected.password_changed": "Password changed",
  "protected.profile_updated": "Profile updated",
  "protected.reauth_failed": "Wrong password when confirming an action",
  "protected.security_questions_set": "Recovery questions changed",
  "protected.totp_code_failed": "Wrong authenticator code",
  "protected.totp_enabled": "Authenticator turned on",
  "protected.totp_disabled": "Authenticator turned off",
  "protected.backup_codes_regenerated": "New backup codes made",
  "passkey.added": "Passkey added",
  "passkey.renamed": "Passkey renamed",
  "passkey.removed": "Passkey deleted",
  "passkey.counter_regression": "Passkey refused: it may have been copied",
  "passkey.phishing_resistant": "Passkey requirement changed",
  "keys.updated": "Message keys published",
  "keys.backup_updated": "Message-key backup saved",
  "email.change_started": "Email change asked",
  "email.changed": "Email address changed",
  "email.removed": "Email address removed",
  "admin.reset_code_issued": "An administrator issued a password-reset code",
  "admin.user_created": "Account created by an administrator",
};

async function activityCard() {
  let events;
  try {
    ({ events } = await api("GET", "/api/me/activity"));
  } catch (e) {
    return card("Recent activity", notice("warning", describe(e)));
  }
  const list = events.length
    ? h("ul", { class: "activity" }, events.map((e) => h("li", {},
      h("strong", { title: e.event }, EVENTS[e.event] ?? e.event), " · ", when(e.at), e.client_addr ? ` · ${e.client_addr}` : "")))
    : h("p", {}, "Nothing yet.");
  return card("Recent activity", list);
}

function deleteCard(app) {
  const button = h("button", { type: "button", class: "danger", onclick: async () => {
    if (!confirm("Delete your account? This cannot be undone.")) return;
    try {
      const done = await fresh(app, "Deleting your account needs your password.", async () => {
        await api("DELETE", "/api/me");
        return true;
      });
      if (!done) return;
    } catch (e) {
      button.after(notice("warning", describe(e)));
      return;
    }
    await signOut().catch(() => {});
    await app.signedOut("Your account was deleted.");
  } }, "Delete my account");
  return card("Delete account", h("p", {}, "Removes the account, its sessions, keys and messages."), button);
}

export default async function account(app) {
  await app.loadMe();
  const [security, sessions, activity] = await Promise.all([securitySection(app), sessionsCard(app), activityCard()]);
  mount("Your account", h("h1", {}, "Your account"),
    h("div", { class: "grid" }, profileCard(app), sessions, emailCard(app)),
    h("h2", { class: "section" }, "Security"), security,
    activity, deleteCard(app));
}
