// Harness for the browser tests: a real bunkerd (the cargo-built binary) with
// its own temp data dir and a free loopback port, and Debian's Chromium in
// headless mode driven by playwright-core. Nothing here downloads a browser.
import { spawn, execFile } from "node:child_process";
import { mkdtemp, rm, readFile, mkdir } from "node:fs/promises";
import { existsSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = path.dirname(fileURLToPath(import.meta.url));
export const repoRoot = path.resolve(here, "..", "..");

/// The phone the page is designed for first.
export const PHONE = { width: 390, height: 844 };
const CHROMIUM = process.env.CHROMIUM_PATH || "/usr/bin/chromium";
const START_TIMEOUT_MS = 30_000;

/// Directory of the cargo-built binaries (target/debug unless told).
export function binDir() {
  if (process.env.BUNKER_BIN_DIR) return process.env.BUNKER_BIN_DIR;
  const target = process.env.CARGO_TARGET_DIR || path.join(repoRoot, "target");
  return path.join(target, "debug");
}

function binary(name) {
  const p = path.join(binDir(), name);
  if (!existsSync(p)) {
    throw new Error(`${p} is missing: build it first with 'cargo build -p bunkerd --bins' (or set BUNKER_BIN_DIR)`);
  }
  return p;
}

const handedOut = new Set();

/// Whether `port` can be listened on at 127.0.0.1 right now.
function canListen(port) {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.unref();
    srv.once("error", () => resolve(false));
    srv.listen(port, "127.0.0.1", () => srv.close(() => resolve(true)));
  });
}

/// A free loopback port for a daemon to listen on, from below the kernel's
/// ephemeral range (as the Rust harness's `free_port`): a port the kernel
/// picked for `listen(0)` and that was released can be taken by any
/// outgoing connection (Chromium's, a swarm's dial) before the daemon binds
/// it; one below the range only by an explicit bind.
export async function freePort() {
  let low = 32768;
  try {
    low = Number((await readFile("/proc/sys/net/ipv4/ip_local_port_range", "utf8")).trim().split(/\s+/)[0]) || low;
  } catch {
    // not Linux: the default range
  }
  for (let i = 0; low > 12_000 && i < 200; i++) {
    const port = 10_000 + Math.floor(Math.random() * (low - 10_000));
    if (!handedOut.has(port) && (await canListen(port))) {
      handedOut.add(port);
      return port;
    }
  }
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

function run(file, args, timeoutMs = 30_000) {
  return new Promise((resolve, reject) => {
    execFile(file, args, { timeout: timeoutMs, env: cleanEnv() }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${path.basename(file)} ${args.join(" ")} failed: ${err.message}\n${stderr}`));
      else resolve(stdout);
    });
  });
}

function cleanEnv() {
  const env = { ...process.env, RUST_LOG: "info" };
  for (const k of Object.keys(env)) if (k.startsWith("BUNKER_") && k !== "BUNKER_BIN_DIR") delete env[k];
  return env;
}

/// Starts bunkerd on a fresh data dir; resolves once /healthz answers.
/// Its libp2p side listens on a free loopback port, without mDNS or UPnP,
/// so it meets only the boxes a test names (`bootstrap`: multiaddrs with
/// /p2p/ ids; `set`: more `KEY=VALUE` config settings).
export async function startBox(options = {}) {
  // Ports picked here are free when picked but can be taken by any outbound
  // connection (Chromium's, a swarm's dial) before the daemon binds them: a
  // daemon that exits with "address in use" is started again on new ports,
  // as the Rust harness does (3 tries).
  for (let tries = 1; ; tries++) {
    try {
      return await startBoxOnce(options);
    } catch (e) {
      if (tries >= 3 || !(e instanceof PortTaken)) throw e;
      console.log(`bunkerd lost a port to another process; starting it again (${e.message.split("\n")[0]})`);
    }
  }
}

class PortTaken extends Error {}

async function startBoxOnce({ bootstrap = [], set = [] } = {}) {
  const dataDir = await mkdtemp(path.join(tmpdir(), "bunker-browser-"));
  const port = await freePort();
  const p2pPort = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const p2pAddr = `/ip4/127.0.0.1/tcp/${p2pPort}`;
  const settings = [
    "net.mdns=false",
    "net.upnp=false",
    // The appliance keeps 2 GiB (hosting) and ≥ 1 GiB per disk free: more
    // than a nearly full test machine has.
    'reserves.safety_margin="16 MiB"',
    'reserves.disk="16 MiB"',
    "reserves.disk_percent=0",
    `net.listen=${JSON.stringify([p2pAddr])}`,
    `net.bootstrap=${JSON.stringify(bootstrap)}`,
    ...set,
  ];
  const args = ["--data-dir", dataDir, "--web-addr", `127.0.0.1:${port}`, ...settings.flatMap((kv) => ["--set", kv])];
  const child = spawn(binary("bunkerd"), args, {
    env: cleanEnv(),
    stdio: ["ignore", "ignore", "pipe"],
  });
  let log = "";
  child.stderr.on("data", (chunk) => (log += chunk));
  const exited = new Promise((resolve) => child.on("exit", (code, signal) => resolve({ code, signal })));
  // "close": exited and its stderr drained.
  const closed = new Promise((resolve) => child.on("close", resolve));
  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    if (child.exitCode !== null) {
      await closed; // the last of its stderr
      const message = `bunkerd exited with ${child.exitCode} before it was ready:\n${log}`;
      await rm(dataDir, { recursive: true, force: true });
      throw /address (already )?in use/i.test(log) ? new PortTaken(message) : new Error(message);
    }
    try {
      const res = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(2000) });
      if (res.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`bunkerd not ready within ${START_TIMEOUT_MS} ms:\n${log}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  const peerId = log.match(/peer_id=(12D3KooW\w+)/)?.[1];
  return {
    url,
    dataDir,
    peerId,
    /// Where other boxes reach this one (with its PeerId).
    p2pAddr: peerId ? `${p2pAddr}/p2p/${peerId}` : null,
    log: () => log,
    /// The pairing code as the owner reads it with the CLI (same as on the OLED).
    pairingCode: async () => (await run(binary("bunker"), ["--data-dir", dataDir, "pairing-code"])).trim(),
    seedWords: async () => (await readFile(path.join(dataDir, "seed"), "utf8")).trim().split(/\s+/),
    async stop() {
      if (child.exitCode === null) {
        child.kill("SIGTERM");
        const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
        await exited;
        clearTimeout(timer);
      }
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/// Headless Chromium with a fresh profile, sized like a phone; `extraArgs`
/// go to Chromium as they are.
export async function startBrowser(extraArgs = []) {
  const profile = await mkdtemp(path.join(tmpdir(), "bunker-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: PHONE,
    timeout: 60_000,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      ...extraArgs,
    ],
  });
  context.setDefaultTimeout(15_000);
  return {
    context,
    async close() {
      await context.close();
      await rm(profile, { recursive: true, force: true });
    },
  };
}

/// Saves a phone-size screenshot of `page` as NAME.png when
/// SCREENSHOT_DIR is set (docs/screenshots is made that way).
export async function screenshot(page, name) {
  const dir = process.env.SCREENSHOT_DIR;
  if (!dir) return;
  await mkdir(dir, { recursive: true });
  await page.screenshot({ path: path.join(dir, `${name}.png`), fullPage: true });
}

/// Claims `box` and completes first-run setup over its API, as the page
/// would; returns the session cookie ("bunker_session=…").
export async function setUpBox(box, password) {
  const headers = { "Content-Type": "application/json", Origin: box.url };
  const post = async (p, body, cookie) => {
    const res = await fetch(`${box.url}${p}`, {
      method: "POST",
      headers: cookie ? { ...headers, Cookie: cookie } : headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const json = await res.json();
    if (!res.ok) throw new Error(`${p}: ${res.status} ${JSON.stringify(json)}`);
    return { res, json };
  };
  const { res } = await post("/api/setup/claim", { pairing_code: await box.pairingCode(), password });
  const cookie = res.headers.get("set-cookie").split(";")[0];
  const { json } = await post("/api/setup/words", undefined, cookie);
  const words = json.quiz_positions.map((p) => json.words[p - 1]);
  await post("/api/setup/quiz", { words }, cookie);
  return cookie;
}

/// Collects script errors and blocked resources of `page` (a 4xx or 503
/// answer the page handles is not one).
export function watchErrors(page) {
  const errors = [];
  page.on("pageerror", (err) => errors.push(`page error: ${err.message}`));
  page.on("console", (msg) => {
    if (msg.type() === "error" && !/status of (4\d\d|503)/.test(msg.text())) errors.push(msg.text());
  });
  return errors;
}

/// A real regtest bitcoind (Bitcoin Knots, through bunker-ln's
/// `regtest_chain` example: build it with `cargo build -p bunker-ln
/// --features regtest --example regtest_chain`), 101 blocks mined.
/// `lnChain` is the `ln.chain` setting a box needs to use it.
export async function startChain() {
  const exe = path.join(binDir(), "examples", "regtest_chain");
  if (!existsSync(exe)) {
    throw new Error(`${exe} is missing: build it with 'cargo build -p bunker-ln --features regtest --example regtest_chain'`);
  }
  const child = spawn(exe, [], { env: cleanEnv(), stdio: ["pipe", "pipe", "pipe"] });
  let out = "", err = "";
  child.stdout.on("data", (d) => (out += d));
  child.stderr.on("data", (d) => (err += d));
  const exited = new Promise((resolve) => child.on("exit", resolve));
  const deadline = Date.now() + 120_000;
  while (!/regtest chain at height/.test(err)) {
    if (child.exitCode !== null) throw new Error(`regtest_chain exited: ${err}`);
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`regtest chain not ready within 120 s: ${err}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  const field = (name) => out.match(new RegExp(`^${name} = "?([^"\\n]+)"?$`, "m"))?.[1];
  const lnChain = `bitcoind:${field("user")}:${field("password")}@${field("host")}:${field("port")}`;
  // One command at a time; each answers with one line on stdout or stderr.
  let queue = Promise.resolve();
  const command = (line) => (queue = queue.then(async () => {
    const [o, e] = [out.length, err.length];
    child.stdin.write(`${line}\n`);
    const until = Date.now() + 60_000;
    for (;;) {
      const answer = out.slice(o) || err.slice(e);
      if (answer.includes("\n")) {
        if (err.length > e) throw new Error(`regtest_chain ${line}: ${err.slice(e).trim()}`);
        return out.slice(o).trim();
      }
      if (Date.now() > until) throw new Error(`regtest_chain ${line}: no answer`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }));
  return {
    lnChain,
    password: field("password"),
    fund: (address, sat) => command(`fund ${address} ${sat}`),
    mine: (n) => command(`mine ${n}`),
    async stop() {
      if (child.exitCode === null) {
        child.stdin.end("quit\n");
        const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
        await exited;
        clearTimeout(timer);
      }
    },
  };
}
