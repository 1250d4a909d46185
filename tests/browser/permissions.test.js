// Camera/microphone permission denied: the page says so clearly and still joins, receiving
// only (both denied) or sending whichever device it was allowed (camera denied).
//
// Chromium is launched without --use-fake-ui-for-media-stream; under playwright-core a
// permission that was not granted to the context is refused without a prompt (NotAllowedError),
// as when a person clicks "Block".
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const lib = require('./lib');

test('camera and microphone blocked: clear message, joins receive-only and sees the other person', { timeout: 90000 }, async (t) => {
  const signal = await lib.startSignal();
  const browser = await lib.launchChromium({ fakeUi: false });
  t.after(async () => {
    await lib.closeBrowser(browser);
    await signal.stop();
  });
  const blocked = await lib.openPage(browser, signal, 'shy', { permissions: [] });
  await assert.doesNotReject(
    blocked.getByText('Camera and microphone access was blocked').waitFor({ state: 'visible', timeout: 15000 }),
  );
  await assert.doesNotReject(blocked.getByText('You can still join').waitFor({ state: 'visible' }));
  const st = await lib.duetState(blocked);
  assert.equal(st.lastError.code, 'permission-denied');
  await lib.waitForState(blocked, 'waiting');
  assert.equal(await blocked.locator('#local-box').isVisible(), false, 'no own preview without a camera');

  const other = await lib.openPage(browser, signal, 'shy', { permissions: ['camera', 'microphone'] });
  const s = await lib.waitForStats(blocked, lib.callFlowing(30), { what: 'the blocked page receives video and audio' });
  assert.equal(s.sentVideo, null, 'nothing is sent without a camera');
  await lib.waitForState(other, 'connected');
  const so = await other.evaluate(() => window.duet.stats());
  assert.ok(!so.video || so.video.framesDecoded === 0, 'the other side receives no video');
  // The notice stays up during the call.
  assert.equal(await blocked.locator('#notice').isVisible(), true);
});

test('only the camera blocked: message says so, and the call carries this page\'s audio', { timeout: 90000 }, async (t) => {
  const signal = await lib.startSignal();
  const browser = await lib.launchChromium({ fakeUi: false });
  t.after(async () => {
    await lib.closeBrowser(browser);
    await signal.stop();
  });
  const micOnly = await lib.openPage(browser, signal, 'half', { permissions: ['microphone'] });
  await assert.doesNotReject(
    micOnly.getByText('Camera access was blocked. Joining with your microphone only.').waitFor({ state: 'visible', timeout: 15000 }),
  );
  await lib.waitForState(micOnly, 'waiting');
  const other = await lib.openPage(browser, signal, 'half', { permissions: ['camera', 'microphone'] });
  await lib.waitForStats(micOnly, lib.callFlowing(30), { what: 'the mic-only page receives video and audio' });
  const so = await lib.waitForStats(other, (s) => s.audio && s.audio.packetsReceived > 0, {
    what: 'the other page receives the mic-only page\'s audio',
  });
  assert.ok(!so.video || so.video.framesDecoded === 0, 'no video from a page without a camera');
  assert.equal(await micOnly.getByRole('button', { name: 'Camera off' }).isDisabled(), true, 'camera button disabled');
});
