// Browser ↔ native: a Chromium page calls a headless `duet call` peer through `signal`, with the
// browser as offerer and as answerer. The browser's getStats shows ≥ 60 decoded frames and Opus
// packets; the native side decodes ≥ 60 frames of the browser's picture — the duet test
// pattern, fed to Chromium's fake camera as a Y4M file — with increasing embedded counters.
// By default the call is H.264 both ways; with the page forced to VP8 (`?codec=vp8`, which
// calls setCodecPreferences with VP8 only) it is VP8 both ways, as for a browser without H.264.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const lib = require('./lib');
const { nativePeer, setUp } = require('./native-peer');

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
