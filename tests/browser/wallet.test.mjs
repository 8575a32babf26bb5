// The Wallet view against real Lightning: two boxes whose ldk-node wallets
// use a real regtest bitcoind. The page gets a deposit address (text and
// QR), sees the deposit arrive, opens a channel to the other box, pays its
// invoice, shows the payment, and closes the channel after confirmation.
import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { freePort, startBox, startBrowser, startChain, screenshot, setUpBox, watchErrors, PHONE } from "./harness.mjs";

const PASSWORD = "correct horse battery";

async function lnBox(chain) {
  const lnPort = await freePort();
  const box = await startBox({
    set: ['ln.network="regtest"', `ln.chain=${JSON.stringify(chain.lnChain)}`, `ln.listen=${JSON.stringify([`127.0.0.1:${lnPort}`])}`],
  });
  box.lnAddr = `127.0.0.1:${lnPort}`;
  return box;
}

async function until(check, what, ms = 60_000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await check().catch(() => null);
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

describe("the wallet on real Lightning (regtest)", { timeout: 420_000 }, () => {
  let chain, a, b, cookieA, cookieB, browser, page, errors;
  const api = async (box, cookie, method, path, body) => {
    const res = await fetch(`${box.url}${path}`, {
      method,
      headers: { Cookie: cookie, Origin: box.url, "Content-Type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
    return text ? JSON.parse(text) : null;
  };

  before(async () => {
    chain = await startChain();
    [a, b] = [await lnBox(chain), await lnBox(chain)];
    cookieA = await setUpBox(a, PASSWORD);
    cookieB = await setUpBox(b, PASSWORD);
    await until(() => api(a, cookieA, "GET", "/api/wallet"), "a's Lightning runs");
    await until(() => api(b, cookieB, "GET", "/api/wallet"), "b's Lightning runs");
    browser = await startBrowser();
    page = browser.context.pages()[0] ?? (await browser.context.newPage());
    errors = watchErrors(page);
    await page.goto(`${a.url}/#wallet`);
    await page.locator("#view-login").getByLabel("Password", { exact: true }).fill(PASSWORD);
    await page.getByRole("button", { name: "Log in" }).click();
    await page.getByRole("heading", { name: "Wallet" }).waitFor();
  });

  after(async () => {
    await browser?.close();
    for (const box of [a, b]) await box?.stop();
    await chain?.stop();
  });

  it("shows a new deposit address as text and QR, and the deposit when it confirms", async () => {
    await page.locator("#wallet-node", { hasText: /^0[23][0-9a-f]{64}$/ }).waitFor();
    assert.equal(await page.locator("#wallet-onchain").textContent(), "0 sat");
    await page.getByRole("button", { name: "New deposit address" }).click();
    const addr = page.locator("#deposit-address");
    await addr.waitFor();
    const address = (await addr.textContent()).trim();
    assert.match(address, /^bcrt1[02-9ac-hj-np-z]{20,}$/);
    await page.locator("#deposit-qr svg").waitFor();
    assert.match(await page.locator("#deposit-qr svg").getAttribute("aria-label"), new RegExp(address));
    await chain.fund(address, 500_000);
    // The view refreshes on its own; the balance is the wallet's, after sync.
    await page.locator("#wallet-onchain", { hasText: "500,000 sat" }).waitFor({ timeout: 120_000 });
    await screenshot(page, "13b-wallet-funded");
  });

  it("opens a channel to another box from the form", async () => {
    const nodeB = (await api(b, cookieB, "GET", "/api/wallet")).node_id;
    const form = page.locator("#open-form");
    await form.getByLabel("Node ID").fill("02abc");
    await form.getByRole("button", { name: "Open channel" }).click();
    await page.locator("#open-error", { hasText: "66 hex characters" }).waitFor();
    await form.getByLabel("Node ID").fill(nodeB);
    await form.getByLabel("Address (host:port)").fill(b.lnAddr);
    await form.getByLabel("Amount (sat)").fill("200000");
    await form.getByRole("button", { name: "Open channel" }).click();
    await page.locator("#open-ok", { hasText: "Channel opening" }).waitFor({ timeout: 60_000 });
    const channel = page.locator("#channels-list > li");
    await channel.first().waitFor();
    assert.match(await channel.first().textContent(), new RegExp(`200,000 sat with ${nodeB.slice(0, 10)}`));
    // The funding transaction reaches the chain's mempool a moment after the
    // answer: mine a block at a time until both sides call the channel usable.
    await until(async () => {
      await chain.mine(1);
      const [wa, wb] = [await api(a, cookieA, "GET", "/api/wallet"), await api(b, cookieB, "GET", "/api/wallet")];
      return wa.channels.some((ch) => ch.usable) && wb.channels.some((ch) => ch.usable);
    }, "the channel is usable on both sides", 180_000);
    await page.locator("#channels-list > li", { hasText: "usable" }).waitFor({ timeout: 30_000 });
  });

  it("pays the other box's invoice and lists the payment", async () => {
    const { invoice } = await until(
      () => api(b, cookieB, "POST", "/api/wallet/invoice", { msat: 10_000_000, description: "browser test" }),
      "b makes an invoice");
    const form = page.locator("#pay-form");
    await form.getByLabel("Invoice").fill(invoice);
    await form.getByRole("button", { name: "Pay" }).click();
    await page.locator("#pay-ok:not([hidden]), #pay-error:not([hidden])").first().waitFor({ timeout: 60_000 });
    assert.equal(await page.locator("#pay-error").isVisible(), false, await page.locator("#pay-error").textContent());
    assert.match(await page.locator("#pay-ok").textContent(), /^Payment sent/);
    await page.locator("#payments-list > li", { hasText: /−10,000 sat · succeeded/ }).waitFor({ timeout: 120_000 });
    const width = await page.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(width <= PHONE.width, `the wallet is ${width} px wide on a ${PHONE.width} px phone`);
    await screenshot(page, "13c-wallet-paid");
  });

  it("makes an invoice shown as text and QR", async () => {
    const form = page.locator("#invoice-form");
    await form.getByLabel("Amount (msat)").fill("5000");
    await form.getByLabel("Description").fill("coffee");
    await form.getByRole("button", { name: "Create invoice" }).click();
    const text = page.locator("#invoice-text");
    await text.waitFor();
    assert.match(await text.textContent(), /^lnbcrt/);
    await page.locator("#invoice-qr svg").waitFor();
  });

  it("closes the channel only after confirmation", async () => {
    const close = page.locator("#channels-list").getByRole("button", { name: /^Close channel with/ });
    await close.click();
    const dialog = page.locator("#confirm-dialog");
    await dialog.waitFor();
    await dialog.getByRole("button", { name: "Cancel" }).click();
    assert.equal(await page.locator("#channels-list > li").count(), 1);
    await close.click();
    await dialog.getByRole("button", { name: "Close channel" }).click();
    await until(async () => (await api(a, cookieA, "GET", "/api/wallet")).channels.length === 0, "the channel is closed");
    await page.locator("#channels-empty").waitFor({ timeout: 30_000 });
  });

  it("never shows the chain's password in the settings", async () => {
    await page.getByRole("navigation", { name: "Sections" }).getByRole("link", { name: "Settings" }).click();
    await page.locator(".setting-group").first().waitFor();
    const text = await page.locator("#settings-groups").textContent();
    assert.match(text, /bitcoind:[^:]+:\(hidden\)@127\.0\.0\.1:\d+/);
    assert.ok(!text.includes(chain.password), "the bitcoind password reached the page");
  });

  it("had no script errors or blocked resources", () => {
    assert.deepEqual(errors, []);
  });
});
