// The admin page's defences as a browser meets them: another page on the
// same machine (same site, other origin) trying to act with the owner's
// session, and a DNS-rebinding name pointing at the box.
import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { startBox, startBrowser } from "./harness.mjs";

const PASSWORD = "correct horse battery";

/// Claims and sets up `box` over its API, as the page would.
async function setUp(box) {
  const headers = { "Content-Type": "application/json", Origin: box.url };
  const post = async (path, body, cookie) => {
    const res = await fetch(`${box.url}${path}`, {
      method: "POST",
      headers: cookie ? { ...headers, Cookie: cookie } : headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const json = await res.json();
    assert.ok(res.ok, `${path}: ${res.status} ${JSON.stringify(json)}`);
    return { res, json };
  };
  const { res } = await post("/api/setup/claim", { pairing_code: await box.pairingCode(), password: PASSWORD });
  const cookie = res.headers.get("set-cookie").split(";")[0];
  const { json } = await post("/api/setup/words", undefined, cookie);
  const words = json.quiz_positions.map((p) => json.words[p - 1]);
  await post("/api/setup/quiz", { words }, cookie);
}

describe("the admin page's defences in a real browser", { timeout: 180_000 }, () => {
  let box, browser, evil, evilUrl;

  before(async () => {
    box = await startBox();
    await setUp(box);
    const boxPort = new URL(box.url).port;
    // An attacker's page on the same machine: same site as the box (127.0.0.1), other origin (port).
    evil = createServer((req, res) => {
      res.writeHead(200, { "Content-Type": "text/html" });
      res.end(`<!doctype html><title>evil</title><script>
        fetch(${JSON.stringify(box.url)} + "/api/logout", { method: "POST", mode: "no-cors", credentials: "include" })
          .then(() => { document.title = "sent"; }, () => { document.title = "sent"; });
      </script>`);
    });
    await new Promise((resolve) => evil.listen(0, "127.0.0.1", resolve));
    evilUrl = `http://127.0.0.1:${evil.address().port}`;
    // rebind.test resolves to the box, as an attacker's DNS would make it.
    browser = await startBrowser([`--host-resolver-rules=MAP rebind.test 127.0.0.1`]);
    assert.ok(boxPort);
  });

  after(async () => {
    await browser?.close();
    await new Promise((resolve) => (evil ? evil.close(resolve) : resolve()));
    await box?.stop();
  });

  it("a page of another origin cannot use the owner's session", async () => {
    const page = await browser.context.newPage();
    await page.goto(box.url);
    await page.locator("#view-login").getByLabel("Password", { exact: true }).fill(PASSWORD);
    await page.getByRole("button", { name: "Log in" }).click();
    await page.getByRole("heading", { name: "This box" }).waitFor();

    const attacker = await browser.context.newPage();
    await attacker.goto(evilUrl);
    await attacker.waitForFunction(() => document.title === "sent");
    // The request reached the box with the owner's cookie (same site), and
    // the Origin check refused it: the owner is still logged in.
    const deadline = Date.now() + 10_000;
    while (!box.log().includes(`from origin ${evilUrl}`) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(box.log().includes(`from origin ${evilUrl}`), `box log:\n${box.log()}`);
    const status = await page.evaluate(async () => (await fetch("/api/status")).status);
    assert.equal(status, 200, "the owner's session must survive the cross-origin logout");
    await attacker.close();
    await page.close();
  });

  it("a DNS-rebinding name gets nothing from the box", async () => {
    const page = await browser.context.newPage();
    const port = new URL(box.url).port;
    const res = await page.goto(`http://rebind.test:${port}/`);
    assert.equal(res.status(), 403);
    assert.match(await res.text(), /does not answer to host name/);
    const api = await page.goto(`http://rebind.test:${port}/api/setup/claim`);
    assert.equal(api.status(), 403);
    await page.close();
  });

  it("a guesser is told to wait, with the time, after five wrong passwords", async () => {
    const page = await browser.context.newPage();
    await page.goto(box.url);
    // Still logged in from the first test: log out first.
    await page.getByRole("button", { name: "Log out" }).click();
    const form = page.locator("#view-login");
    const error = page.locator("#login-error");
    for (let i = 0; i < 5; i++) {
      await form.getByLabel("Password", { exact: true }).fill(`guess number ${i}`);
      await page.getByRole("button", { name: "Log in" }).click();
      await page.locator("#login-error", { hasText: "Wrong password" }).waitFor();
      await page.evaluate(() => (document.getElementById("login-error").hidden = true));
    }
    await form.getByLabel("Password", { exact: true }).fill(PASSWORD);
    await page.getByRole("button", { name: "Log in" }).click();
    await error.waitFor();
    assert.match(await error.textContent(), /^Too many attempts: wait \d+ seconds, then try again$/);
    assert.ok(box.log().includes("login with a wrong password"));
    assert.ok(!box.log().includes("guess number"), "passwords must never be logged");
    await page.close();
  });
});
