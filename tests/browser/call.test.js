// Browser ↔ browser through `signal`: two pages in one room get a two-way call with H.264 video
// and Opus audio, over loopback only, and the page shows it (badge, stats line).
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const lib = require('./lib');

const isLoopback = (a) => /^127\./.test(a) || a === '::1';

test('two pages call each other: ≥ 60 H.264 frames decoded and Opus audio both ways', { timeout: 90000 }, async (t) => {
  const signal = await lib.startSignal();
  const browser = await lib.launchChromium();
  t.after(async () => {
    await lib.closeBrowser(browser);
    await signal.stop();
  });

  const a = await lib.openPage(browser, signal, 'call');
  await lib.waitForState(a, 'waiting');
  await assert.doesNotReject(a.getByText('Waiting for someone to join call').waitFor());
  const b = await lib.openPage(browser, signal, 'call');

  const [sa, sb] = await Promise.all([
    lib.waitForStats(a, lib.callFlowing(60), { what: 'page A receives video and audio' }),
    lib.waitForStats(b, lib.callFlowing(60), { what: 'page B receives video and audio' }),
  ]);
  for (const [name, s] of [['A', sa], ['B', sb]]) {
    assert.equal(s.video.codec && s.video.codec.mimeType, 'video/H264', `${name} decodes H.264`);
    assert.match(s.video.codec.sdpFmtpLine, /packetization-mode=1/, `${name}: packetization-mode 1`);
    assert.equal(s.sentVideo.codec && s.sentVideo.codec.mimeType, 'video/H264', `${name} encodes H.264`);
    assert.equal(s.audio.codec && s.audio.codec.mimeType.toLowerCase(), 'audio/opus', `${name} receives Opus`);
    assert.ok(s.video.frameWidth > 0 && s.video.frameHeight > 0, `${name} knows the frame size`);
    if (lib.onlyLoopbackInterfaces()) {
      assert.ok(isLoopback(s.localCandidate.address), `${name} uses a loopback address, not ${s.localCandidate.address}`);
    } else {
      t.diagnostic(`${name}: this host has non-loopback interfaces; run under scripts/browser-tests.sh (a network namespace with only lo) to keep ICE on loopback. Selected pair: ${JSON.stringify([s.localCandidate, s.remoteCandidate])}`);
    }
  }
  // Exactly one side offered, as the server said.
  const [da, db] = [await lib.duetState(a), await lib.duetState(b)];
  assert.equal(da.offerer, true);
  assert.equal(db.offerer, false);

  // What a person sees: the call is on, with a stats line.
  for (const page of [a, b]) {
    await assert.doesNotReject(page.locator('#badge', { hasText: 'Connected' }).waitFor());
    assert.equal(await page.locator('#overlay').isVisible(), false, 'the waiting overlay is gone');
    await page.waitForFunction(() => /fps.*RTT/.test(document.getElementById('stats-line').textContent));
    assert.equal(await page.locator('#local-video').isVisible(), true, 'own preview is shown');
  }
});
