// The admin page (accounts with the admin role): find users, act on one, read the audit log.
// Every call goes to the admin API (docs/api.md), which checks the role, asks for a fresh
// authentication before destructive actions, and audits everything.

import { api, describe } from "../api.mjs";
import { h, mount, field, form, card, notice, when } from "../ui.mjs";
import { fresh } from "./security.mjs";

const q = (params) => new URLSearchParams(Object.entries(params).filter(([, v]) => v !== "" && v != null)).toString();

export default async function admin(app) {
  if (!app.me.is_admin) {
    mount("Admin", h("h1", {}, "Admin"), notice("warning", "Your account does not have the admin role."));
    return;
  }
  const results = h("div", { "aria-live": "polite" });
  const detail = h("div", {});
  const search = field({ label: "Find users", name: "q", type: "search", placeholder: "part of a username", autocomplete: "off" });
  const { el } = form({
    fields: [search], submit: "Search",
    onSubmit: async (v) => showUsers(app, results, detail, v.q.trim()),
  });
  mount("Admin", h("h1", {}, "Admin"),
    h("div", { class: "grid" }, card("Users", el, results), detail),
    await auditCard());
  await showUsers(app, results, detail, "");
}

async function showUsers(app, results, detail, query) {
  const { users } = await api("GET", `/api/admin/users?${q({ q: query, limit: 50 })}`);
  if (!users.length) {
    results.replaceChildren(h("p", {}, "No users match."));
    return;
  }
  results.replaceChildren(h("ul", { class: "activity" }, users.map((u) => h("li", {},
    h("button", { type: "button", class: "link", "data-user": u.username,
      onclick: () => showUser(app, detail, u.username, () => showUsers(app, results, detail, query)) }, u.username),
    ` · ${u.status}`, u.is_admin ? h("span", { class: "badge" }, "admin") : null))));
}

async function showUser(app, detail, name, changed) {
  const u = await api("GET", `/api/admin/users/${encodeURIComponent(name)}`);
  const out = h("div", { "aria-live": "polite" });
  const path = `/api/admin/users/${encodeURIComponent(name)}`;
  const act = (label, method, suffix, why, opts = {}) => h("button", { type: "button", class: opts.danger ? "danger" : "",
    onclick: async () => {
      if (opts.confirm && !confirm(opts.confirm)) return;
      try {
        const r = await fresh(app, why, async () => (await api(method, `${path}${suffix}`)) ?? true);
        if (r === undefined) return;
        out.replaceChildren(notice("success", `${label}: done.`));
        await changed();
        if (method !== "DELETE") await showUser(app, detail, name, changed);
        else detail.replaceChildren(notice("success", `${name} was deleted.`));
      } catch (e) {
        out.replaceChildren(notice("warning", describe(e)));
      }
    } }, label);
  detail.replaceChildren(card(u.username,
    h("dl", { class: "facts" },
      h("dt", {}, "Status"), h("dd", { "data-testid": "admin-status" }, u.status),
      h("dt", {}, "Created"), h("dd", {}, when(u.created_at)),
      h("dt", {}, "Last sign-in"), h("dd", {}, when(u.last_login_at)),
      h("dt", {}, "Sessions"), h("dd", {}, String(u.sessions)),
      h("dt", {}, "Two-step"), h("dd", {}, u.totp_enabled ? "on" : "off"),
      h("dt", {}, "Groups"), h("dd", { "data-testid": "admin-groups" }, u.groups?.length ? u.groups.join(", ") : "none")),
    h("div", { class: "actions" },
      u.status === "banned"
        ? act("Unban", "POST", "/unban", "Unbanning needs your password.")
        : act("Ban", "POST", "/ban", "Banning needs your password.", { danger: true }),
      act("Sign out everywhere", "POST", "/revoke-sessions", "Revoking sessions needs your password."),
      act("Reset two-step", "POST", "/reset-2fa", "Resetting two-step sign-in needs your password."),
      act("Delete", "DELETE", "", "Deleting a user needs your password.", { danger: true, confirm: `Delete ${name}? This cannot be undone.` })),
    out));
}

async function auditCard() {
  const list = h("div", { "aria-live": "polite" });
  const user = field({ label: "User", name: "user", autocomplete: "off" });
  const event = field({ label: "Event", name: "event", placeholder: "login.success", autocomplete: "off" });
  const since = field({ label: "Since", name: "since", type: "datetime-local" });
  const load = async (v = {}) => {
    const secs = v.since ? Math.floor(new Date(v.since).getTime() / 1000) : "";
    let entries;
    try {
      ({ entries } = await api("GET", `/api/admin/audit?${q({ user: v.user, event: v.event, since: secs, limit: 100 })}`));
    } catch (e) {
      list.replaceChildren(notice("warning", describe(e)));
      return;
    }
    list.replaceChildren(h("table", { class: "table" },
      h("thead", {}, h("tr", {}, ["When", "Event", "User", "Address", "Detail"].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, entries.map((a) => h("tr", {},
        h("td", {}, when(a.at)), h("td", {}, a.event), h("td", {}, a.username ?? a.user_id ?? "—"),
        h("td", {}, a.client_addr ?? "—"), h("td", {}, a.reason ?? ""))))));
  };
  const { el } = form({ fields: [user, event, since], submit: "Filter", onSubmit: (v) => load(v) });
  await load();
  return card("Audit log", el, list);
}
