// Browser ↔ native: a Chromium page calls a headless `duet call` peer through `signal`, with the
// browser as offerer and as answerer. The browser's getStats shows ≥ 60 decoded frames and Opus
// packets; the native side decodes ≥ 60 frames of the browser's picture — the duet test
// pattern, fed to Chromium's fake camera as a Y4M file — with increasing embedded counters.
// By default the call is H.264 both ways; with the page forced to VP8 (`?codec=vp8`, which
// calls setCodecPreferences with VP8 only) it is VP8 both ways, as for a browser without H.264.
'use strict';

const test = require('node:test');
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

// Seconds each call of the cases below runs (from the native peer's start): 60 frames are
// 2 s at 30 fps, after a setup of about 0.5 s; and shorter than the fake camera's 15 s loop.
const CASE_CALL_S = 9;

const CASES = [
  { browserFirst: true, codec: null },
  { browserFirst: false, codec: null },
  { browserFirst: true, codec: 'vp8' },
  { browserFirst: false, codec: 'vp8' },
];

for (const { browserFirst, codec } of CASES) {
  const role = browserFirst ? 'offerer' : 'answerer';
  const mime = codec === 'vp8' ? 'video/VP8' : 'video/H264';
  const nativeName = codec === 'vp8' ? 'VP8' : 'H.264';
  const forced = codec ? `, page forced to ${nativeName}` : '';
  test(`browser as ${role} ↔ native duet call${forced}: video and audio both ways in ${nativeName}`, { timeout: 120000 }, async (t) => {
    const run = await setUp(t);
    const { signal, browser } = run;
    const room = `native-${role}${codec ? `-${codec}` : ''}`;
    const params = codec ? { codec } : {};
    let page;
    if (browserFirst) {
      page = await lib.openPage(browser, signal, room, { params });
      await lib.waitForState(page, 'waiting');
      run.native = nativePeer(signal, room, CASE_CALL_S);
    } else {
      run.native = nativePeer(signal, room, CASE_CALL_S);
      await run.native.waitFor(`waiting for someone to join ${room}`);
      page = await lib.openPage(browser, signal, room, { params });
    }
    const s = await lib.waitForStats(page, lib.callFlowing(60), { what: 'the page receives the native video and audio', timeoutMs: 40000 });
    assert.equal(s.video.codec && s.video.codec.mimeType, mime, `the page decodes ${nativeName} from duet`);
    assert.equal(s.audio.codec && s.audio.codec.mimeType.toLowerCase(), 'audio/opus');
    assert.equal(s.sentVideo && s.sentVideo.codec && s.sentVideo.codec.mimeType, mime, `the page sends ${nativeName}`);
    const st = await lib.duetState(page);
    assert.equal(st.offerer, browserFirst, `the browser is the ${role}`);
    // Let the native side run to its end and read its report.
    const { code, json, output } = await run.native.done;
    run.native = null;
    assert.ok(json, `duet call wrote no report; output:\n${output}`);
    assert.equal(code, 0, `duet call failed: ${json.failure}\n${output}`);
    const n = json.stats;
    assert.ok(n.frames_decoded >= 60, `native decoded ${n.frames_decoded} frames; page console:\n${page.duetConsole.slice(-30).join("\n")}\nits output:\n${output}`);
    assert.ok(n.pattern_frames >= 60, `native read the pattern in ${n.pattern_frames} frames`);
    // The fake camera loops a 15 s file; the call is shorter than that, so counters only grow.
    assert.equal(n.pattern_out_of_order, 0, 'the browser frames arrive with increasing counters');
    assert.ok(n.pattern_last > n.pattern_first, `counters ${n.pattern_first}..${n.pattern_last}`);
    assert.ok(n.audio_frames_played >= 50, `native played ${n.audio_frames_played} audio frames`);
    assert.equal(n.video_codec_sent, nativeName, 'duet sends the codec the page chose');
    assert.equal(n.video_codec_received, nativeName, 'duet decodes the codec the page sends');
    // Both show the same verification code (derived from the two DTLS fingerprints).
    const nativeCode = [...(json.history || [])].reverse().map((h) => h.verification_code).find(Boolean);
    assert.match(String(st.verification), /^\d{3} \d{3}$/, 'the page shows a verification code');
    assert.equal(nativeCode, st.verification, 'the page and duet show the same code');
    t.diagnostic(`${n.codecs}: native setup ${n.setup_ms} ms; browser setup ${JSON.stringify(st.timings)}`);
  });
}

// The page shares its screen (getDisplayMedia; Chromium's fake screen is at least 1280 wide, its
// fake camera the 320×240 pattern): the same sender carries it, with no new offer, and duet
// decodes the screen's pictures; "Stop sharing" brings the camera back and duet decodes the
// pattern again.
test('the page shares its screen with duet, and goes back to its camera', { timeout: 120000 }, async (t) => {
  const run = await setUp(t);
  const { signal, browser } = run;
  const room = 'native-screen-share';
  const page = await lib.openPage(browser, signal, room);
  await lib.waitForState(page, 'waiting');
  run.native = nativePeer(signal, room, 20);
  await lib.waitForStats(page, lib.callFlowing(30), { what: 'the call flows', timeoutMs: 40000 });
  const descriptionsSent = () =>
    page.evaluate(() => window.duet.events.filter((e) => e.what === 'offer sent' || e.what === 'answer sent').length);
  const offersBefore = await descriptionsSent();
  assert.ok(offersBefore >= 1, 'the page sent its offer');
  assert.equal(await page.isVisible('#share-button'), true, 'the page offers screen sharing');
  await page.click('#share-button');
  await page.waitForFunction(() => window.duet.sharing === true, null, { timeout: 10000 });
  const shared = await lib.waitForStats(page, (s) => s.sentVideo && s.sentVideo.frameWidth >= 1280, {
    what: 'the page sends its screen',
  });
  assert.equal(await page.textContent('#share-button .label'), 'Stop sharing');
  await lib.sleep(3000);
  const during = await page.evaluate(() => window.duet.stats());
  assert.ok(during.sentVideo.framesEncoded > shared.sentVideo.framesEncoded + 5, 'the screen keeps being sent');
  await page.click('#share-button');
  await page.waitForFunction(() => window.duet.sharing === false, null, { timeout: 10000 });
  await lib.waitForStats(page, (s) => s.sentVideo && s.sentVideo.frameWidth === 320, { what: 'the page sends its camera again' });
  assert.equal(await descriptionsSent(), offersBefore, 'no renegotiation: the same sender carried the screen');

  const { code, json, output } = await run.native.done;
  run.native = null;
  assert.ok(json, `duet call wrote no report; output:\n${output}`);
  assert.equal(code, 0, `duet call failed: ${json.failure}\n${output}`);
  const seen = (json.history || []).map((h) => ({ size: h.recv_resolution.join('x'), frames: h.frames_decoded, pattern: h.pattern_last }));
  const screenAt = seen.findIndex((h) => Number(h.size.split('x')[0]) >= 1280);
  assert.ok(screenAt >= 0, `duet decoded the page's screen: ${JSON.stringify(seen)}`);
  const backAt = seen.findIndex((h, i) => i > screenAt && h.size === '320x240');
  assert.ok(backAt > screenAt, `duet decoded the camera again after the share: ${JSON.stringify(seen)}`);
  const last = seen[seen.length - 1];
  assert.ok(last.frames > seen[backAt].frames, 'frames keep arriving after the share');
  assert.ok(json.stats.pattern_last > seen[screenAt].pattern, 'the camera pattern runs on after the share');
  t.diagnostic(`duet's received sizes over the call: ${seen.map((h) => h.size).join(' ')}`);
});

/** A signalling message with every DTLS fingerprint in its description replaced (a man in the middle's). */
function forgeFingerprints(text) {
  let message;
  try {
    message = JSON.parse(text);
  } catch (_) {
    return text;
  }
  let changed = false;
  for (const key of ['offer', 'answer']) {
    const sdp = message[key] && message[key].sdp;
    if (typeof sdp !== 'string') continue;
    message[key].sdp = sdp.replace(/^a=fingerprint:.*$/gm, `a=fingerprint:sha-256 ${Array(32).fill('AA').join(':')}`);
    changed = true;
  }
  return changed ? JSON.stringify(message) : text;
}

// The verification code does its job between a browser and duet: a relay that rewrites the
// fingerprints in the descriptions both ways (the page's WebSocket is routed through one)
// leaves the page and duet showing different codes. The honest calls above show equal ones.
test('a relay rewriting the DTLS fingerprints makes the page and duet show different codes', { timeout: 120000 }, async (t) => {
  const run = await setUp(t, { pattern: false });
  const { signal, browser } = run;
  const room = 'native-mitm';
  let forged = 0;
  const page = await lib.openPage(browser, signal, room, {
    before: (p) =>
      p.routeWebSocket(/.*/, (ws) => {
        const server = ws.connectToServer();
        const relay = (to) => (m) => {
          const out = typeof m === 'string' ? forgeFingerprints(m) : m;
          if (out !== m) forged += 1;
          to.send(out);
        };
        ws.onMessage(relay(server));
        server.onMessage(relay(ws));
      }),
  });
  await lib.waitForState(page, 'waiting');
  run.native = nativePeer(signal, room, 8);
  // Read the code in the same poll that sees it: the page clears it again when the forged
  // call's DTLS then fails (a separate evaluate once read it back as null).
  const shown = await page.waitForFunction(() => window.duet.verification, null, { timeout: 30000 });
  const pageCode = await shown.jsonValue();
  const { json, output } = await run.native.done;
  run.native = null;
  assert.ok(json, `duet call wrote no report; output:\n${output}`);
  const nativeCode = [...(json.history || [])].reverse().map((h) => h.verification_code).find(Boolean);
  assert.ok(forged >= 2, `the relay rewrote the offer and the answer (${forged})`);
  assert.match(String(pageCode), /^\d{3} \d{3}$/, 'the page shows a code');
  assert.match(String(nativeCode), /^\d{3} \d{3}$/, `duet shows a code; output:\n${output}`);
  assert.notEqual(pageCode, nativeCode, 'a rewriting relay went unnoticed');
  t.diagnostic(`page ${pageCode}, duet ${nativeCode}`);
});
