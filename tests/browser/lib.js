// Helpers for duet's browser tests: a real `signal` binary on 127.0.0.1, Debian's Chromium driven
// by playwright-core (never a downloaded browser), and polling of the page's `window.duet` hook.
//
// Every address used is loopback. scripts/browser-tests.sh runs the tests in a network
// namespace whose only interface is `lo`; in addition pages are opened with `loopback=1`, so
// the page itself neither sends nor accepts ICE candidates that are not loopback.
'use strict';

const { spawn } = require('node:child_process');
const dgram = require('node:dgram');
const fs = require('node:fs');
const http = require('node:http');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');

const REPO = path.resolve(__dirname, '..', '..');
const SIGNAL_BIN = process.env.SIGNAL_BIN || path.join(REPO, 'target', 'debug', 'signal');
const CHROMIUM = process.env.CHROMIUM_BIN || '/usr/bin/chromium';

/** Flags this machine needs (see shared/MACHINE-NOTES.md), plus fake media devices. */
const CHROMIUM_BASE_ARGS = [
  '--use-fake-device-for-media-stream',
  '--allow-loopback-in-peer-connection',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  // Real host addresses instead of mDNS names: nothing is multicast on the LAN, and loopback
  // candidates can be recognised.
  '--disable-features=WebRtcHideLocalIpsWithMdns',
  // The page plays the remote audio without a click, as it would after the user's Join.
  '--autoplay-policy=no-user-gesture-required',
];

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * True when every network interface is loopback, as inside the network namespace that
 * scripts/browser-tests.sh creates: then no browser can gather or use any other address.
 */
function onlyLoopbackInterfaces() {
  return Object.values(os.networkInterfaces())
    .flat()
    .every((i) => i.internal);
}

/** A TCP port on 127.0.0.1 that was free a moment ago. */
function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** A port on 127.0.0.1 free for both TCP and UDP a moment ago (signal's STUN/TURN takes both). */
async function freeTcpAndUdpPort() {
  for (let attempt = 0; attempt < 20; attempt++) {
    const port = await freePort();
    const udpFree = await new Promise((resolve) => {
      const socket = dgram.createSocket('udp4');
      socket.once('error', () => resolve(false));
      socket.bind(port, '127.0.0.1', () => socket.close(() => resolve(true)));
    });
    if (udpFree) return port;
  }
  throw new Error('no port free for both TCP and UDP on 127.0.0.1 in 20 tries');
}

function httpGet(url, timeoutMs = 1000) {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

/**
 * Starts the `signal` binary on 127.0.0.1 (a free port unless `port` is given) and waits until
 * `/healthz` answers. Returns `{ port, baseUrl, proc, logs(), stop() }`.
 */
async function startSignal({ port, args = [], env = {} } = {}) {
  if (!fs.existsSync(SIGNAL_BIN)) {
    throw new Error(`signal binary not found at ${SIGNAL_BIN}: run \`cargo build -p signal --bin signal\` or set SIGNAL_BIN`);
  }
  const listenPort = port || (await freePort());
  const baseUrl = `http://127.0.0.1:${listenPort}`;
  // Each signal its own STUN/TURN port (not the default 3478), so that test files can run
  // side by side.
  const turn = args.includes('--no-turn') || args.includes('--turn-port')
    ? []
    : ['--turn-port', String(await freeTcpAndUdpPort())];
  const proc = spawn(SIGNAL_BIN, ['--listen', `127.0.0.1:${listenPort}`, ...turn, ...args], {
    env: { ...process.env, RUST_LOG: process.env.RUST_LOG || 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  proc.stdout.on('data', (d) => (output += d));
  proc.stderr.on('data', (d) => (output += d));
  let exited = null;
  proc.on('exit', (code, sig) => (exited = { code, sig }));
  const deadline = Date.now() + 15000;
  for (;;) {
    if (exited) throw new Error(`signal exited early (${JSON.stringify(exited)}):\n${output}`);
    try {
      const res = await httpGet(`${baseUrl}/healthz`);
      if (res.status === 200) break;
    } catch {
      /* not up yet */
    }
    if (Date.now() > deadline) {
      proc.kill('SIGKILL');
      throw new Error(`signal did not answer /healthz within 15 s:\n${output}`);
    }
    await sleep(50);
  }
  return {
    port: listenPort,
    baseUrl,
    proc,
    logs: () => output,
    async stop() {
      if (exited) return;
      const done = new Promise((resolve) => proc.once('exit', resolve));
      proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), 5000);
      await done;
      clearTimeout(timer);
    },
  };
}

/**
 * Launches headless Debian Chromium (a fresh temporary profile per launch).
 * `fakeUi: false` leaves out `--use-fake-ui-for-media-stream`, so permissions are decided by
 * the test (see `denyMedia`).
 */
async function launchChromium({ fakeUi = true, args = [] } = {}) {
  if (!fs.existsSync(CHROMIUM)) {
    throw new Error(`Chromium not found at ${CHROMIUM}: apt-get install chromium (or set CHROMIUM_BIN)`);
  }
  const { chromium } = require('playwright-core');
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [...CHROMIUM_BASE_ARGS, ...(fakeUi ? ['--use-fake-ui-for-media-stream'] : []), ...args],
  });
}

/** The page URL for `room` on `signal`, with the test-only loopback ICE filter. */
function pageUrl(signal, room, params = {}) {
  const u = new URL(`${signal.baseUrl}/`);
  if (room !== undefined && room !== null) u.searchParams.set('room', room);
  u.searchParams.set('loopback', '1');
  for (const [k, v] of Object.entries(params)) u.searchParams.set(k, v);
  return u.toString();
}

/**
 * Opens the web client in a new browser context (one per person) and waits for its hook.
 * `options.permissions`: `undefined` leaves the browser's default; an array grants exactly those.
 * `options.before(page)` runs before the page loads.
 * The page's console is kept in `page.duetConsole` for failure messages.
 */
async function openPage(browser, signal, room, { params = {}, permissions, viewport, before } = {}) {
  const context = await browser.newContext({
    viewport: viewport || { width: 960, height: 600 },
    ...(permissions ? { permissions } : {}),
  });
  const page = await context.newPage();
  page.duetConsole = [];
  page.on('console', (m) => page.duetConsole.push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => page.duetConsole.push(`pageerror: ${e.message}`));
  // `before(page)` runs before the page loads (to route its WebSocket, for example).
  if (before) await before(page);
  await page.goto(pageUrl(signal, room, params));
  await page.waitForFunction(() => window.duet !== undefined);
  return page;
}

/** Denies camera and/or microphone for `origin` in the page's context (Chromium, via CDP). */
async function denyMedia(browser, page, { camera = true, microphone = true } = {}) {
  const cdp = await browser.newBrowserCDPSession();
  const origin = new URL(page.url()).origin;
  const { browserContextIds } = await cdp.send('Target.getBrowserContexts');
  const set = async (name, setting) => {
    for (const browserContextId of browserContextIds) {
      await cdp.send('Browser.setPermission', { permission: { name }, setting, origin, browserContextId });
    }
  };
  if (camera) await set('videoCapture', 'denied');
  if (microphone) await set('audioCapture', 'denied');
  await cdp.detach();
}

/** What the page's `window.duet` hook says, for assertions and failure messages. */
async function duetState(page) {
  return page.evaluate(() => ({
    state: window.duet.state,
    message: window.duet.message,
    notice: window.duet.notice,
    lastError: window.duet.lastError,
    offerer: window.duet.offerer,
    timings: window.duet.timings,
    peerConnections: window.duet.peerConnections,
    verification: window.duet.verification,
    sharing: window.duet.sharing,
    events: window.duet.events.slice(-40),
  }));
}

/**
 * Polls `window.duet.stats()` every 250 ms until `predicate(stats)` holds; returns those stats.
 * Throws after `timeoutMs` with the last stats and the page's recent events.
 */
async function waitForStats(page, predicate, { timeoutMs = 30000, what = 'stats condition' } = {}) {
  const deadline = Date.now() + timeoutMs;
  let last = null;
  for (;;) {
    last = await page.evaluate(() => window.duet.stats());
    if (last && predicate(last)) return last;
    if (Date.now() > deadline) {
      const state = await duetState(page);
      throw new Error(
        `${what} not met within ${timeoutMs} ms\nlast stats: ${JSON.stringify(last)}\npage: ${JSON.stringify(state, null, 1)}\nconsole:\n${page.duetConsole.slice(-30).join('\n')}`,
      );
    }
    await sleep(250);
  }
}

/** Waits until the page's hook state is `state` (e.g. 'waiting', 'connected'). */
async function waitForState(page, state, { timeoutMs = 20000 } = {}) {
  try {
    await page.waitForFunction((s) => window.duet.state === s, state, { timeout: timeoutMs, polling: 100 });
  } catch (e) {
    const got = await duetState(page).catch(() => null);
    throw new Error(`page did not reach state ${state} within ${timeoutMs} ms: ${JSON.stringify(got, null, 1)}`);
  }
}

/** True when the stats show a two-way call: ≥ `frames` video frames decoded and audio packets. */
const callFlowing =
  (frames = 60) =>
  (s) =>
    s.video && s.video.framesDecoded >= frames && s.audio && s.audio.packetsReceived > 0;

/** Closes every context of `browser`, then the browser; never throws. */
async function closeBrowser(browser) {
  if (!browser) return;
  await browser.close().catch(() => {});
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

/**
 * An init script (runs in the page before its own scripts): keeps every RTCPeerConnection the
 * page makes in `window.__labPcs`, so a test can read raw getStats or the senders' tracks.
 */
function keepPeerConnections() {
  const Native = window.RTCPeerConnection;
  window.__labPcs = [];
  window.RTCPeerConnection = function (...args) {
    const pc = new Native(...args);
    window.__labPcs.push(pc);
    return pc;
  };
  window.RTCPeerConnection.prototype = Native.prototype;
  Object.setPrototypeOf(window.RTCPeerConnection, Native);
}

/**
 * A hard stop for a lab script, whatever happens in the browser: after `seconds` it prints
 * `{ ok: false, error: '<what> timed out' }` as its JSON line and exits 2. Clear the returned
 * timer when done.
 */
function hardStop(what, seconds, started) {
  return setTimeout(() => {
    process.stdout.write(`${JSON.stringify({ ok: false, error: `${what} timed out`, started })}\n`);
    process.exit(2);
  }, seconds * 1000);
}

module.exports = {
  REPO,
  keepPeerConnections,
  hardStop,
  SIGNAL_BIN,
  CHROMIUM,
  CHROMIUM_BASE_ARGS,
  sleep,
  onlyLoopbackInterfaces,
  freePort,
  httpGet,
  startSignal,
  launchChromium,
  pageUrl,
  openPage,
  denyMedia,
  duetState,
  waitForStats,
  waitForState,
  callFlowing,
  closeBrowser,
  median,
};
