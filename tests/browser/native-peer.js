// The native side of the browser ↔ native tests (native.test.js, native-share.test.js): a
// headless `duet call` peer, and the parts of one such test (a signal server, Chromium whose
// fake camera shows the duet test pattern).
'use strict';

const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { spawn, execFileSync } = require('node:child_process');
const lib = require('./lib');

const DUET_BIN = process.env.DUET_BIN || path.join(lib.REPO, 'target', 'debug', 'duet');
const PATTERN = path.join(lib.REPO, 'target', 'duet-pattern-320x240.y4m');

function ensurePattern() {
  if (fs.existsSync(PATTERN)) return;
  execFileSync('cargo', ['run', '-q', '-p', 'media', '--example', 'pattern_y4m', '--', PATTERN, '320', '240', '450', '30'], {
    cwd: lib.REPO,
    stdio: 'inherit',
  });
}

/** Starts `duet call` and resolves with its parsed JSON report when it exits. */
function nativePeer(signal, room, seconds) {
  const report = path.join(lib.REPO, 'target', `duet-native-${room}-${Date.now()}.json`);
  const url = `ws://127.0.0.1:${signal.port}/`;
  const proc = spawn(
    DUET_BIN,
    ['call', room, '--signal', url, '--loopback', '--video', 'test', '--audio', 'tone:440', '--speaker', 'null',
      '--size', '320x240', '--duration', String(seconds), '--stats-every', '0', '--stats-json', report],
    // DUET_NATIVE_LOG=call=debug shows the native side's log in a failure's message.
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, RUST_LOG: process.env.DUET_NATIVE_LOG || 'warn,webrtc=error,rtc=error' } },
  );
  let output = '';
  const waiters = [];
  const onData = (d) => {
    output += d;
    for (const w of waiters.splice(0)) if (!w(output)) waiters.push(w);
  };
  proc.stdout.on('data', onData);
  proc.stderr.on('data', onData);
  /** Resolves when the peer's output contains `text` (its state lines), or rejects at `timeoutMs`. */
  const waitFor = (text, timeoutMs = 20000) =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`duet call never printed ${JSON.stringify(text)}:\n${output}`)), timeoutMs);
      const check = (out) => {
        if (!out.includes(text)) return false;
        clearTimeout(timer);
        resolve();
        return true;
      };
      if (!check(output)) waiters.push(check);
    });
  const done = new Promise((resolve) => {
    proc.on('exit', (code) => {
      let json = null;
      try {
        json = JSON.parse(fs.readFileSync(report, 'utf8'));
      } catch (_) {
        /* reported below */
      }
      resolve({ code, json, output });
    });
  });
  return { proc, done, waitFor };
}

/**
 * The parts of one test: a signal server, Chromium (its fake camera showing the duet pattern
 * when `pattern`), and `run.native`, the `duet call` peer once started; all stopped when the
 * test ends.
 */
async function setUp(t, { pattern = true } = {}) {
  assert.ok(fs.existsSync(DUET_BIN), `duet binary not found at ${DUET_BIN}: cargo build -p duet`);
  if (pattern) ensurePattern();
  const run = { native: null };
  run.signal = await lib.startSignal();
  run.browser = await lib.launchChromium({ args: pattern ? [`--use-file-for-fake-video-capture=${PATTERN}`] : [] });
  t.after(async () => {
    if (run.native) run.native.proc.kill('SIGKILL');
    await lib.closeBrowser(run.browser);
    await run.signal.stop();
  });
  return run;
}

module.exports = { nativePeer, setUp };
