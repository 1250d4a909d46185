// Browser ↔ native, beyond the plain call (native.test.js): the page shares its screen with a
// headless `duet call` peer and goes back to its camera; and a relay that rewrites the DTLS
// fingerprints is seen in the verification codes. In a file of their own so that node runs
// them beside native.test.js's calls.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const lib = require('./lib');
const { nativePeer, setUp } = require('./native-peer');

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
// leaves the page and duet showing different codes. The honest calls of native.test.js show
// equal ones.
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
