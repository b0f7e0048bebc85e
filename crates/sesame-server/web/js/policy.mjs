// The username and password rules, checked in the page as the person types. They are the
// server's rules (sesame_proto::policy; the limits come from contract.mjs and the common
// password list is the server's own file), because with client-side OPAQUE the server never
// sees the password and cannot check it itself (docs/protocol.md §2.3).

import { POLICY } from "./contract.mjs";

let common = null;

/** The common-password list (folded, one per line), fetched once. */
export function commonPasswords() {
  common ??= fetch(new URL("../common-passwords.txt", import.meta.url))
    .then((r) => r.text())
    .then((text) => new Set(text.split("\n").filter((l) => l && !l.startsWith("#"))));
  return common;
}

/** NFKC, lowercase, NFKC: how names and passwords are compared ignoring case and width. */
export function fold(s) {
  return s.normalize("NFKC").toLowerCase().normalize("NFKC");
}

/** Why `input` is not a valid username, or null. Returns the canonical form as `name`. */
export function checkUsername(input) {
  const name = fold(input.trim());
  const chars = [...name].length;
  if (chars < POLICY.usernameMin) return { problem: `At least ${POLICY.usernameMin} characters.` };
  if (chars > POLICY.usernameMax) return { problem: `At most ${POLICY.usernameMax} characters.` };
  const bad = [...name].find((c) => !/[a-z0-9._-]/.test(c));
  if (bad) return { problem: `“${bad}” can't be used: letters, digits, “.”, “_” and “-” only.` };
  if (!/^[a-z0-9]/.test(name)) return { problem: "Start with a letter or a digit." };
  if (POLICY.reserved.includes(name)) return { problem: "That name is reserved. Choose another." };
  return { name, problem: null };
}

/** The rules as a person reads them, shown before the password is typed. */
export const PASSWORD_RULES = [
  `${POLICY.passwordMin} to ${POLICY.passwordMax} characters; a few words are easiest to remember.`,
  "Not containing your username.",
  "Not one of the 30,000 most common passwords.",
];

/** Why `password` is not acceptable for `username`, or null. */
export async function checkPassword(password, username) {
  const normalised = password.normalize("NFKC");
  const chars = [...normalised].length;
  if (chars < POLICY.passwordMin) return `Too short: at least ${POLICY.passwordMin} characters (${chars} so far).`;
  if (chars > POLICY.passwordMax) return `Too long: at most ${POLICY.passwordMax} characters.`;
  const folded = fold(normalised);
  const { name } = checkUsername(username);
  if (name && folded.includes(name)) return "It contains your username. Choose something else.";
  if ((await commonPasswords()).has(folded)) return "That password is too common. Choose a less predictable one.";
  return null;
}
