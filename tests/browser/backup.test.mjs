// The Backup view's replication figures against real boxes: three bunkerd on
// loopback (a, and its peers b and c). Before a has anything, the view says
// the database is not replicated; after a file, "Back up now" sends a real
// snapshot to b and c and the view lists them with the version they
// confirmed; "Check holders now" fetches it back from both and shows that
// they passed. Every figure is compared with what a's API says. a also has
// an LSPS2 liquidity provider and placement caps in its config (Lightning is
// off, so nothing dials the provider): the Wallet view shows the provider with
// its token hidden, the Settings view the caps.
import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { startBox, startBrowser, screenshot, setUpBox, watchErrors, PHONE } from "./harness.mjs";

const PASSWORD = "correct horse battery";
const LSP_ID = "0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798";
const LSP_TOKEN = "lsp-token-s3cret";

async function getJson(box, path, cookie) {
  const res = await fetch(`${box.url}${path}`, { headers: { Cookie: cookie } });
  if (!res.ok) throw new Error(`${path}: ${res.status} ${await res.text()}`);
  return res.json();
}

async function waitFor(check, what, ms = 30_000) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`timed out waiting until ${what}`);
}

describe("the Backup view shows the manifest's replication", { timeout: 240_000 }, () => {
  let a, b, c, browser, page, cookie, errors;

  before(async () => {
    c = await startBox();
    b = await startBox({ bootstrap: [c.p2pAddr] });
    a = await startBox({
      bootstrap: [b.p2pAddr, c.p2pAddr],
      set: [`ln.lsps2.node_id=${LSP_ID}`, "ln.lsps2.address=127.0.0.1:9", `ln.lsps2.token=${LSP_TOKEN}`, "placement.term=\"90d\""],
    });
    cookie = await setUpBox(a, PASSWORD);
    await waitFor(async () => (await getJson(a, "/api/node", cookie)).connected_peers >= 2, "a connected to b and c");
    browser = await startBrowser();
    page = browser.context.pages()[0] ?? (await browser.context.newPage());
    errors = watchErrors(page);
    await page.goto(`${a.url}/#backup`);
    await page.locator("#view-login").getByLabel("Password", { exact: true }).fill(PASSWORD);
    await page.getByRole("button", { name: "Log in" }).click();
    await page.getByRole("heading", { name: "Replication of the database" }).waitFor();
  });

  after(async () => {
    await browser?.close();
    for (const box of [a, b, c]) await box?.stop();
  });

  const reload = async () => {
    await page.reload();
    await page.getByRole("heading", { name: "Replication of the database" }).waitFor();
  };

  it("says the database is not replicated while the box holds nothing", async () => {
    const status = await getJson(a, "/api/backup", cookie);
    assert.equal(status.state, "not_replicated");
    assert.deepEqual(status.holders, []);
    await page.locator("#repl-state[data-state=not_replicated]").waitFor();
    assert.equal(await page.locator("#repl-state").textContent(), status.summary);
    assert.match(status.summary, /^Not replicated yet: the manifest is empty/);
    await page.locator("#repl-empty", { hasText: "No peer holds a copy" }).waitFor();
    assert.equal(await page.locator("#repl-holders li").count(), 0);
    assert.match(await page.locator("#repl-facts").textContent(), /Newest snapshotnone made yet/);
    assert.match(await page.locator("#repl-facts").textContent(), /Holders with it0 of 5 wanted/);
  });

  it("lists b and c with the version they confirmed after Back up now", async () => {
    const put = await fetch(`${a.url}/api/files/content?path=%2Fbackup-me.bin&copies=2&keep_local=true`, {
      method: "PUT", headers: { Cookie: cookie, Origin: a.url }, body: randomBytes(100_000),
    });
    assert.equal(put.status, 201, await put.text());
    await reload();
    await page.getByRole("button", { name: "Back up now" }).click();
    const ok = await page.locator("#repl-ok").filter({ hasText: /^Snapshot \d+ stored on 2 peer\(s\)/ });
    await ok.waitFor({ timeout: 30_000 });
    const version = Number((await ok.textContent()).match(/^Snapshot (\d+)/)[1]);
    const status = await getJson(a, "/api/backup", cookie);
    // The page drew the status it was answered with; a's API agrees (the
    // background loop may have sent a newer version since, never fewer holders).
    assert.ok(status.latest_version >= version, `${status.latest_version} < ${version}`);
    assert.equal(status.state, "too_few_holders", JSON.stringify(status));
    assert.equal(await page.locator("#repl-state").getAttribute("data-state"), "too_few_holders");
    assert.match(await page.locator("#repl-state").textContent(), /^Too few holders: 2 of the 5 wanted peers hold the newest snapshot/);
    assert.deepEqual(status.holders.map((h) => h.peer).sort(), [b.peerId, c.peerId].sort());
    for (const peer of [b.peerId, c.peerId]) {
      const li = page.locator(`#repl-holders li[data-peer="${peer}"]`);
      assert.match(await li.textContent(), new RegExp(`version ${version} confirmed just now · not checked since the box started`));
    }
    assert.match(await page.locator("#repl-facts").textContent(), new RegExp(`Newest snapshotversion ${version}`));
    assert.match(await page.locator("#repl-facts").textContent(), /Holders with it2 of 5 wanted/);
    assert.match(await page.locator("#repl-facts").textContent(), new RegExp(`Last round.*snapshot ${version} stored on 2 of 5 wanted peers`));
    assert.equal(await page.locator("#repl-empty").isVisible(), false);
  });

  it("shows that both holders passed after Check holders now", async () => {
    await page.getByRole("button", { name: "Check holders now" }).click();
    await page.locator("#repl-ok", { hasText: "2 of 2 holder(s) passed the check." }).waitFor({ timeout: 30_000 });
    const status = await getJson(a, "/api/backup", cookie);
    for (const h of status.holders) {
      assert.equal(h.last_audit?.outcome, "passed", JSON.stringify(h));
      const li = page.locator(`#repl-holders li[data-peer="${h.peer}"]`);
      assert.match(await li.textContent(), /last check just now: passed \(served version \d+\)/);
      assert.equal(await li.getAttribute("class"), "good");
    }
    const width = await page.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(width <= PHONE.width, `Backup is ${width} px wide on a ${PHONE.width} px phone`);
    await page.locator("#kit-qr svg").waitFor();
    await screenshot(page, "14-backup");
  });

  it("shows the liquidity provider on the Wallet view and the placement caps on Settings, never the token", async () => {
    await page.goto(`${a.url}/#wallet`);
    await page.locator("#lsp-list", { hasText: LSP_ID }).waitFor();
    const lsp = await page.locator("#lsp-list").textContent();
    assert.match(lsp, /Provider \(LSPS2\)0279be667e/);
    assert.match(lsp, /Address127\.0\.0\.1:9Token\(hidden\)/);
    await page.goto(`${a.url}/#settings`);
    const placement = page.locator("#settings-groups section[aria-label=placement]");
    await placement.waitFor();
    assert.match(await placement.textContent(), /Term90d/);
    assert.match(await placement.textContent(), /Max price \(msat per GiB-day\)100,000/);
    assert.match(await page.locator("#settings-groups section[aria-label=ln]").textContent(), /token: \(hidden\)/);
    assert.ok(!(await page.content()).includes(LSP_TOKEN), "the token never reaches the page");
  });

  it("had no script errors or blocked resources", () => {
    assert.deepEqual(errors, []);
  });
});
