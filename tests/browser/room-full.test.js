// Room full: a third person opening the same room is told so on the page, and the two in the
// call are not disturbed.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const lib = require('./lib');

test('a third page sees "Room … is full"', { timeout: 60000 }, async (t) => {
  const signal = await lib.startSignal();
  const browser = await lib.launchChromium();
  t.after(async () => {
    await lib.closeBrowser(browser);
    await signal.stop();
  });
  const a = await lib.openPage(browser, signal, 'crowded');
  await lib.waitForState(a, 'waiting');
  const b = await lib.openPage(browser, signal, 'crowded');
  await lib.waitForState(a, 'connected');
  await lib.waitForState(b, 'connected');

  const c = await lib.openPage(browser, signal, 'crowded');
  const message = c.getByText('Room crowded is full');
  await assert.doesNotReject(message.waitFor({ state: 'visible', timeout: 10000 }));
  await assert.doesNotReject(c.getByText('Two people are already in this call').waitFor({ state: 'visible' }));
  await assert.doesNotReject(c.getByRole('button', { name: 'Try again' }).waitFor({ state: 'visible' }));
  await assert.doesNotReject(c.locator('#badge', { hasText: 'Room full' }).waitFor());
  const state = await lib.duetState(c);
  assert.equal(state.state, 'full');
  assert.equal(state.lastError && state.lastError.code, 'room-full');
  assert.equal(state.peerConnections, 0, 'the third page never started a call');

  assert.equal(await c.locator('#local-box').isVisible(), false, 'the refused page released its camera');

  // The call goes on: both pages keep decoding new frames after the refusal.
  const frames = async (page) => ((await page.evaluate(() => window.duet.stats())) || { video: {} }).video.framesDecoded || 0;
  const [fa, fb] = [await frames(a), await frames(b)];
  await Promise.all([
    lib.waitForStats(a, (st) => st.video && st.video.framesDecoded >= fa + 10, { what: 'A keeps receiving after the refusal' }),
    lib.waitForStats(b, (st) => st.video && st.video.framesDecoded >= fb + 10, { what: 'B keeps receiving after the refusal' }),
  ]);
  assert.equal((await lib.duetState(a)).state, 'connected');
  assert.equal((await lib.duetState(b)).state, 'connected');

  // Once someone leaves, "Try again" gets the third person in.
  await a.getByRole('button', { name: 'Hang up' }).click();
  await lib.waitForState(b, 'waiting');
  await c.getByRole('button', { name: 'Try again' }).click();
  await Promise.all([
    lib.waitForStats(b, lib.callFlowing(10), { what: 'B receives from C' }),
    lib.waitForStats(c, lib.callFlowing(10), { what: 'C receives from B' }),
  ]);
});
