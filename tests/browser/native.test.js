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
    assert.ok(fs.existsSync(DUET_BIN), `duet binary not found at ${DUET_BIN}: cargo build -p duet`);
    ensurePattern();
    const signal = await lib.startSignal();
    const browser = await lib.launchChromium({ args: [`--use-file-for-fake-video-capture=${PATTERN}`] });
    let native;
    t.after(async () => {
      if (native) native.proc.kill('SIGKILL');
      await lib.closeBrowser(browser);
      await signal.stop();
    });
    const room = `native-${role}${codec ? `-${codec}` : ''}`;
    const params = codec ? { codec } : {};
    let page;
    if (browserFirst) {
      page = await lib.openPage(browser, signal, room, { params });
      await lib.waitForState(page, 'waiting');
      native = nativePeer(signal, room, 14);
    } else {
      native = nativePeer(signal, room, 14);
      await native.waitFor(`waiting for someone to join ${room}`);
      page = await lib.openPage(browser, signal, room, { params });
    }
    const s = await lib.waitForStats(page, lib.callFlowing(60), { what: 'the page receives the native video and audio', timeoutMs: 40000 });
    assert.equal(s.video.codec && s.video.codec.mimeType, mime, `the page decodes ${nativeName} from duet`);
    assert.equal(s.audio.codec && s.audio.codec.mimeType.toLowerCase(), 'audio/opus');
    assert.equal(s.sentVideo && s.sentVideo.codec && s.sentVideo.codec.mimeType, mime, `the page sends ${nativeName}`);
    const st = await lib.duetState(page);
    assert.equal(st.offerer, browserFirst, `the browser is the ${role}`);
    // Let the native side run to its end and read its report.
    const { code, json, output } = await native.done;
    native = null;
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
