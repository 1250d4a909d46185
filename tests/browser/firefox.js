// A minimal WebDriver BiDi driver for Debian's stock Firefox ESR (no Playwright-patched build).
//
// playwright-core 1.65 can launch stock Firefox over BiDi (`channel: 'moz-firefox'`), but its
// `newContext()` sends `emulation.setMediaFeaturesOverride`, which Firefox ESR 153 answers with
// "unknown command", so it cannot open a page there. This file speaks just enough BiDi itself:
// start Firefox headless with a fresh profile whose prefs fake camera and microphone, open
// tabs, navigate, and evaluate script. Pages it returns offer the subset of Playwright's Page
// API that lib.js helpers use: `evaluate(fn, arg)`, `waitForFunction(fn, arg, opts)`, `url()`,
// `duetConsole`.
'use strict';

const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const FIREFOX_CANDIDATES = [process.env.FIREFOX_BIN, '/usr/bin/firefox-esr', '/usr/bin/firefox'].filter(Boolean);

/** Prefs: fake devices, no permission prompt, loopback ICE, no network of its own. */
const FIREFOX_PREFS = {
  'media.navigator.streams.fake': true,
  'media.navigator.permission.disabled': true,
  'media.peerconnection.ice.loopback': true,
  // Only the loopback interface: no traffic to this machine's other addresses.
  'media.peerconnection.ice.force_interface': 'lo',
  'media.peerconnection.ice.obfuscate_host_addresses': false,
  'media.autoplay.default': 0,
  'media.autoplay.blocking_policy': 0,
  'media.gmp-manager.updateEnabled': false,
  'media.gmp-gmpopenh264.autoupdate': false,
  'app.update.enabled': false,
  'app.update.auto': false,
  'browser.shell.checkDefaultBrowser': false,
  'browser.startup.homepage_override.mstone': 'ignore',
  'browser.startup.page': 0,
  'browser.safebrowsing.update.enabled': false,
  'browser.safebrowsing.malware.enabled': false,
  'browser.safebrowsing.phishing.enabled': false,
  'browser.safebrowsing.downloads.enabled': false,
  'browser.newtabpage.enabled': false,
  'browser.aboutHomeSnippets.updateUrl': '',
  'datareporting.policy.dataSubmissionEnabled': false,
  'datareporting.healthreport.uploadEnabled': false,
  'toolkit.telemetry.enabled': false,
  'network.captive-portal-service.enabled': false,
  'network.connectivity-service.enabled': false,
  'extensions.update.enabled': false,
  'extensions.getAddons.cache.enabled': false,
  'extensions.blocklist.enabled': false,
  'services.settings.server': 'http://127.0.0.1:9/',
  'remote.prefs.recommended': true,
};

function findFirefox() {
  return FIREFOX_CANDIDATES.find((p) => fs.existsSync(p)) || null;
}

class BidiPage {
  constructor(firefox, context) {
    this.firefox = firefox;
    this.context = context;
    this.duetConsole = [];
    this._url = 'about:blank';
  }

  url() {
    return this._url;
  }

  /** Runs `fn` in every document this tab loads from now on, before the page's scripts. */
  async addInitScript(fn) {
    await this.firefox.send('script.addPreloadScript', {
      functionDeclaration: fn.toString(),
      contexts: [this.context],
    });
  }

  async goto(url) {
    this._url = url;
    await this.firefox.send('browsingContext.navigate', { context: this.context, url, wait: 'complete' });
  }

  /** Runs `fn(arg)` in the page (awaiting a returned promise) and returns its JSON value. */
  async evaluate(fn, arg) {
    const expression = `(async () => JSON.stringify(await (${fn.toString()})(${JSON.stringify(arg === undefined ? null : arg)})))()`;
    const r = await this.firefox.send('script.evaluate', {
      expression,
      target: { context: this.context },
      awaitPromise: true,
      resultOwnership: 'none',
    });
    if (r.type === 'exception') throw new Error(`page script failed: ${JSON.stringify(r.exceptionDetails).slice(0, 500)}`);
    const v = r.result;
    if (v.type !== 'string') return undefined;
    return JSON.parse(v.value);
  }

  async waitForFunction(fn, arg, { timeout = 30000, polling = 100 } = {}) {
    const deadline = Date.now() + timeout;
    for (;;) {
      try {
        if (await this.evaluate(fn, arg)) return;
      } catch {
        /* navigating */
      }
      if (Date.now() > deadline) throw new Error(`waitForFunction timed out after ${timeout} ms`);
      await new Promise((r) => setTimeout(r, polling));
    }
  }

  /** Visible text of the element with `id` ('' when hidden). */
  async textOf(id) {
    return this.evaluate((i) => {
      const el = document.getElementById(i);
      return el && el.checkVisibility() ? el.textContent : '';
    }, id);
  }
}

/**
 * Prefs for Firefox inside a network-lab home (a namespace with a veth): ICE on the home's
 * interface (Firefox never gathers on `lo`), and camera, microphone and WebCrypto on the lab's
 * plain-http origin, which is not a secure context otherwise.
 */
const LAB_PREFS = {
  'media.peerconnection.ice.loopback': null,
  'media.peerconnection.ice.force_interface': null,
  'media.devices.insecure.enabled': true,
  'media.getusermedia.insecure.enabled': true,
  // The lab's signal host counts as a secure context (WebCrypto for the verification code),
  // as Chromium's --unsafely-treat-insecure-origin-as-secure does in lab-peer.js.
  'dom.securecontext.allowlist': '203.0.113.10',
};

/**
 * Launches headless Firefox with a fresh profile and connects over WebDriver BiDi. `prefs`
 * are merged over FIREFOX_PREFS (a `null` value drops one). Throws with Firefox's own output
 * when it cannot be driven.
 */
async function launchFirefox({ timeoutMs = 30000, prefs = {} } = {}) {
  const WebSocket = require('ws');
  const bin = findFirefox();
  if (!bin) throw new Error(`no Firefox found (tried ${FIREFOX_CANDIDATES.join(', ')})`);
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'duet-firefox-'));
  const merged = { ...FIREFOX_PREFS, ...prefs };
  const userJs = Object.entries(merged)
    .filter(([, v]) => v !== null)
    .map(([k, v]) => `user_pref(${JSON.stringify(k)}, ${JSON.stringify(v)});`)
    .join('\n');
  fs.writeFileSync(path.join(profile, 'user.js'), `${userJs}\n`);
  const proc = spawn(bin, ['--headless', '--no-remote', '--remote-debugging-port=0', '--profile', profile, 'about:blank'], {
    env: { ...process.env, MOZ_CRASHREPORTER_DISABLE: '1', MOZ_DISABLE_SAFE_MODE_KEY: '1', HOME: process.env.HOME || os.homedir() },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const endpoint = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`Firefox did not start BiDi within ${timeoutMs} ms:\n${output}`)), timeoutMs);
    const onData = (d) => {
      output += d;
      const m = output.match(/WebDriver BiDi listening on (ws:\/\/\S+)/);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    };
    proc.stdout.on('data', onData);
    proc.stderr.on('data', onData);
    proc.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`Firefox exited (${code}) before BiDi was up:\n${output}`));
    });
  });
  const ws = new WebSocket(`${endpoint}/session`);
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  let nextId = 1;
  const pending = new Map();
  const pages = new Map();
  ws.on('message', (data) => {
    const msg = JSON.parse(data.toString());
    if (msg.id !== undefined && pending.has(msg.id)) {
      const { resolve, reject, method } = pending.get(msg.id);
      pending.delete(msg.id);
      if (msg.type === 'error') reject(new Error(`${method}: ${msg.error}: ${msg.message}`));
      else resolve(msg.result);
    } else if (msg.method === 'log.entryAdded') {
      const p = pages.get(msg.params.source && msg.params.source.context);
      if (p) p.duetConsole.push(`${msg.params.level}: ${msg.params.text}`);
    }
  });
  const firefox = {
    bin,
    version: '',
    output: () => output,
    send(method, params) {
      const id = nextId++;
      ws.send(JSON.stringify({ id, method, params }));
      return new Promise((resolve, reject) => pending.set(id, { resolve, reject, method }));
    },
    /** A new tab in its own user context (like a separate person). */
    async newPage() {
      const { userContext } = await firefox.send('browser.createUserContext', {});
      const { context } = await firefox.send('browsingContext.create', { type: 'tab', userContext });
      const page = new BidiPage(firefox, context);
      pages.set(context, page);
      return page;
    },
    async close() {
      try {
        await Promise.race([firefox.send('browser.close', {}), new Promise((r) => setTimeout(r, 3000))]);
      } catch {
        /* already gone */
      }
      ws.close();
      if (proc.exitCode === null) proc.kill('SIGKILL');
      fs.rmSync(profile, { recursive: true, force: true });
    },
  };
  const session = await firefox.send('session.new', { capabilities: {} });
  firefox.version = session.capabilities.browserVersion;
  await firefox.send('session.subscribe', { events: ['log.entryAdded'] });
  return firefox;
}

module.exports = { launchFirefox, findFirefox, FIREFOX_PREFS, LAB_PREFS };
