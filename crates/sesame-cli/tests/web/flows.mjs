// The web app in Debian's Chromium, driven by playwright-core, against a real `sesame serve`
// (started by crates/sesame-cli/tests/web.rs, which passes its address and the binary).
// Each step (steps.mjs) asserts what a person sees. Every request any page makes is checked
// for the passwords used. On failure, every open page is saved as a screenshot.

import { chromium } from "playwright-core";
import { createServer } from "node:http";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BASE, step, assert, violations } from "./lib.mjs";
import { run } from "./steps.mjs";

const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";

const browser = await chromium.launch({
  executablePath: CHROMIUM, headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
// A page on another origin of this machine, for the cross-site request test.
const evil = createServer((req, res) => {
  res.setHeader("content-type", "text/html");
  // A forged sign-out: a form posted to Sesame from this other origin, with the user's cookie.
  res.end(`<!doctype html><title>elsewhere</title><form id="f" method="POST" action="${BASE}/web/logout"></form><script>document.getElementById("f").submit();</script>`);
});
await new Promise((resolve) => evil.listen(0, "127.0.0.1", resolve));
const evilUrl = `http://127.0.0.1:${evil.address().port}/`;
let failed = false;
try {
  await run({ browser, evilUrl, cliHome: (name) => mkdtempSync(join(tmpdir(), `sesame-cli-${name}-`)) });
  await step("no request carried a password", async () => {
    assert(violations.length === 0, violations.join("\n"));
  });
} catch {
  failed = true;
} finally {
  evil.close();
  await browser.close();
}
process.exit(failed ? 1 : 0);
