// Chat: end-to-end encrypted conversations over `/ws`, with the CLI's formats. The identity is
// unlocked with the password (OPAQUE's export key), contacts are pinned on first use, a key
// change blocks the conversation until accepted, and safety numbers verify a contact.

import { api, accessToken, describe, ApiError } from "../api.mjs";
import { unb64 } from "../auth.mjs";
import { E } from "../contract.mjs";
import { ensureIdentity, verifyIdentity, seal, open, safetyNumber, pins, history } from "../messaging.mjs";
import { h, mount, field, form, notice, when } from "../ui.mjs";
import { askPassword } from "./security.mjs";

/** The directory's verified keys for `user`, or null if none are published. */
async function directory(user) {
  try {
    const pub = await api("GET", `/api/keys/${encodeURIComponent(user)}`);
    return { ...(await verifyIdentity(pub)), username: pub.username };
  } catch (e) {
    if (e instanceof ApiError && (e.code === E.KEYS_NOT_FOUND || e.code === E.USER_NOT_FOUND)) return null;
    throw e;
  }
}

const same = (a, b) => a && b && a.signing_key === b.signing_key && a.encryption_key === b.encryption_key;

export default async function chat(app) {
  if (!app.exportKey) {
    mount("Chat", h("h1", {}, "Chat"), h("p", {}, "Unlocking your message keys…"));
    app.exportKey = await askPassword(app, "Your message keys are encrypted with your password. Enter it to unlock them in this page.");
    if (!app.exportKey) {
      mount("Chat", h("h1", {}, "Chat"), notice("info", "Your messages stay locked until you enter your password."),
        h("button", { type: "button", onclick: () => app.go("/chat", { replace: true }) }, "Unlock"));
      return;
    }
  }
  app.identity ??= await ensureIdentity(app.me.username, app.exportKey);
  new Chat(app).start();
}

/** One chat page: contacts, the open conversation, the socket. */
class Chat {
  constructor(app) {
    this.app = app;
    this.me = app.me.username;
    this.keys = app.identity.keys;
    this.pins = pins(this.me);
    this.peer = null;
    this.pending = new Map(); // id → send frame not yet accepted
    this.list = h("ul", { class: "messages", "aria-live": "polite", "data-testid": "messages" });
    this.contacts = h("ul", { class: "contacts" });
    this.header = h("div", { class: "conversation-header" }, h("p", { class: "hint" }, "Choose a conversation or start one."));
    this.banner = h("div", {});
    this.status = h("p", { class: "hint", "aria-live": "polite" });
  }

  start() {
    const to = field({ label: "Start a conversation with", name: "to", autocomplete: "off", autocapitalize: "none", placeholder: "username" });
    const newChat = form({ fields: [to], submit: "Open", onSubmit: async (v) => this.select(v.to.trim().toLowerCase()) }).el;
    const text = field({ label: "Message", name: "text", autocomplete: "off", maxlength: 4000 });
    const composer = form({ fields: [text], submit: "Send", onSubmit: async (v) => {
      if (!this.peer) throw new Error("Choose someone to write to first.");
      if (!v.text.trim()) return;
      await this.send(v.text);
      text.input.value = "";
      text.input.focus();
    } }).el;
    composer.classList.add("composer");
    mount("Chat", h("h1", {}, "Chat"),
      this.app.identity.replaced ? notice("warning", "Your earlier message keys could not be unlocked, so new ones were made. Contacts will see that your keys changed.") : null,
      h("div", { class: "chat" },
        h("aside", {}, newChat, h("h2", {}, "Conversations"), this.contacts),
        h("section", { class: "conversation", "aria-label": "Conversation" }, this.header, this.banner, this.list, composer)),
      this.status);
    this.renderContacts();
    this.connect();
  }

  renderContacts() {
    const names = Object.keys(this.pins.all()).sort();
    this.contacts.replaceChildren(...names.map((n) => h("li", {}, h("button", { type: "button",
      "aria-current": n === this.peer ? "true" : "false", onclick: () => this.select(n) }, n,
      this.pins.get(n)?.trust === "verified" ? h("span", { class: "badge" }, "verified") : null))));
  }

  /** Opens the conversation with `user`, pinning their keys on first use. */
  async select(user) {
    const current = await directory(user);
    if (!current) throw new Error(`${user} has no published message keys yet.`);
    const pin = this.pins.get(current.username);
    if (!pin) this.pins.set(current.username, { signing_key: current.signing_key, encryption_key: current.encryption_key, trust: "unverified", pinned_at: Date.now() });
    else if (!same(pin, current)) this.pins.set(current.username, { ...pin, changed_to: { signing_key: current.signing_key, encryption_key: current.encryption_key } });
    this.peer = current.username;
    this.history = history(this.me, this.app.identity.wrapKey, this.peer);
    this.renderContacts();
    await this.renderConversation();
  }

  async renderConversation() {
    const pin = this.pins.get(this.peer);
    this.header.replaceChildren(h("h2", {}, this.peer, " ", h("span", { class: "badge" }, pin.trust)),
      h("button", { type: "button", class: "small", onclick: () => this.safety() }, "Safety number"));
    this.banner.replaceChildren(pin.changed_to ? this.keyChanged(pin) : "");
    const items = await this.history.load();
    this.list.replaceChildren(...items.map((m) => this.item(m)));
    this.list.scrollTop = this.list.scrollHeight;
  }

  item(m) {
    return h("li", { class: m.direction === "out" ? "mine" : "" }, m.text,
      h("span", { class: "meta" }, m.direction === "out" ? "you" : this.peer, " · ", when(Math.floor(m.sent_at / 1000)),
        m.direction === "out" && this.pending.has(m.id) ? " · sending…" : ""));
  }

  /** The blocking warning of a key change: nothing is sent or shown until it is accepted. */
  keyChanged(pin) {
    return notice("warning", h("strong", {}, `${this.peer}'s keys changed.`),
      " Messages to and from them are blocked until you accept the new keys. Someone may be impersonating them: check with them another way first.",
      h("div", { class: "actions" }, h("button", { type: "button", onclick: async () => {
        this.pins.set(this.peer, { ...pin.changed_to, trust: "unverified", pinned_at: Date.now() });
        await this.renderConversation();
        this.reconnect();
      } }, "Accept the new keys")));
  }

  async safety() {
    const pin = this.pins.get(this.peer);
    const mine = await api("GET", `/api/keys/${encodeURIComponent(this.me)}`);
    const number = await safetyNumber({ username: this.me, ...mine }, { username: this.peer, ...pin });
    const groups = number.split(" ");
    const dialog = h("dialog", { class: "modal", "aria-labelledby": "sn-title" },
      h("h2", { id: "sn-title" }, `Safety number with ${this.peer}`),
      h("p", {}, "Compare it with theirs in person or on a call. If it matches, nobody is in the middle."),
      h("p", { class: "safety", "data-testid": "safety-number" }, groups.slice(0, 6).join(" "), h("br"), groups.slice(6).join(" ")),
      h("div", { class: "actions" },
        h("button", { type: "button", class: "primary", onclick: async () => {
          this.pins.set(this.peer, { ...this.pins.get(this.peer), trust: "verified" });
          dialog.close();
          await this.renderConversation();
          this.renderContacts();
        } }, "It matches: mark verified"),
        h("button", { type: "button", onclick: () => dialog.close() }, "Close")));
    dialog.addEventListener("close", () => dialog.remove());
    document.body.append(dialog);
    dialog.showModal();
  }

  async send(text) {
    const pin = this.pins.get(this.peer);
    if (pin.changed_to) throw new Error(`${this.peer}'s keys changed: accept them before writing.`);
    const current = await directory(this.peer);
    if (!same(pin, current)) {
      this.pins.set(this.peer, { ...pin, changed_to: current && { signing_key: current.signing_key, encryption_key: current.encryption_key } });
      await this.renderConversation();
      throw new Error(`${this.peer}'s keys changed: nothing was sent.`);
    }
    const frame = await seal(this.me, this.keys, this.peer, current, text);
    this.pending.set(frame.id, frame);
    await this.remember(this.peer, { id: frame.id, direction: "out", sent_at: frame.sent_at, text, verified: pin.trust === "verified" });
    this.ws?.readyState === WebSocket.OPEN && this.ws.send(JSON.stringify(frame));
  }

  async remember(peer, message) {
    const store = peer === this.peer ? this.history : history(this.me, this.app.identity.wrapKey, peer);
    const items = await store.load();
    if (items.some((m) => m.id === message.id)) return false;
    items.push(message);
    await store.save(items);
    if (peer === this.peer) await this.renderConversation();
    return true;
  }

  async connect() {
    const token = await accessToken();
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const ws = new WebSocket(`${scheme}://${location.host}/ws?token=${encodeURIComponent(token)}`);
    this.ws = ws;
    ws.addEventListener("open", () => {
      this.status.textContent = "Connected.";
      for (const frame of this.pending.values()) ws.send(JSON.stringify(frame));
    });
    ws.addEventListener("message", (ev) => this.onFrame(JSON.parse(ev.data)).catch((e) => {
      this.status.textContent = describe(e);
    }));
    ws.addEventListener("close", (ev) => {
      if (this.ws !== ws) return;
      if (ev.code === 1008) return this.app.signedOut("Your session ended. Sign in again.");
      this.status.textContent = "Disconnected; reconnecting…";
      setTimeout(() => this.connect(), 2000);
    });
  }

  reconnect() {
    const old = this.ws;
    this.ws = null;
    old?.close();
    this.connect();
  }

  async onFrame(frame) {
    if (frame.type === "accepted") {
      this.pending.delete(frame.id);
      if (this.peer) await this.renderConversation();
    } else if (frame.type === "error") {
      this.pending.delete(frame.id);
      this.status.textContent = `Not delivered: ${frame.error?.message ?? "error"}`;
    } else if (frame.type === "message") {
      await this.receive(frame);
    }
  }

  async receive(frame) {
    const ack = () => this.ws?.send(JSON.stringify({ type: "ack", id: frame.id }));
    let pin = this.pins.get(frame.from);
    if (!pin) {
      const current = await directory(frame.from);
      if (!current) return; // unknown sender: left on the server
      pin = { signing_key: current.signing_key, encryption_key: current.encryption_key, trust: "unverified", pinned_at: Date.now() };
      this.pins.set(frame.from, pin);
      this.renderContacts();
    }
    if (pin.changed_to) return; // withheld until the new keys are accepted
    const peer = { signing: await unb64(pin.signing_key) };
    const text = await open(this.me, this.keys, frame, peer).catch(() => undefined);
    if (text === null) {
      const current = await directory(frame.from);
      if (current && !same(current, pin)) {
        this.pins.set(frame.from, { ...pin, changed_to: { signing_key: current.signing_key, encryption_key: current.encryption_key } });
        if (frame.from === this.peer) await this.renderConversation();
        return; // withheld, not acknowledged
      }
    }
    if (typeof text !== "string") {
      this.status.textContent = `A message from ${frame.from} was rejected: forged or tampered.`;
      return ack();
    }
    await this.remember(frame.from, { id: frame.id, direction: "in", sent_at: frame.sent_at, text, verified: pin.trust === "verified" });
    ack();
    if (!this.peer) await this.select(frame.from);
  }
}
