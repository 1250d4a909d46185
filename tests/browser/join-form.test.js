// Joining without `?room=`: the page asks for a room name; typing one and pressing Join puts
// the person in that room (waiting, with a share link) and records the room in the address.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const lib = require('./lib');

test('no ?room= → room field → Join → waiting in that room', { timeout: 60000 }, async (t) => {
  const signal = await lib.startSignal();
  const browser = await lib.launchChromium();
  t.after(async () => {
    await lib.closeBrowser(browser);
    await signal.stop();
  });
  const page = await lib.openPage(browser, signal, null);
  await assert.doesNotReject(page.getByText('Join a call').waitFor({ state: 'visible' }));
  assert.equal((await lib.duetState(page)).state, 'idle');
  assert.equal(await page.locator('#controls').isVisible(), false, 'no call controls before joining');

  await page.getByLabel('Room name').fill('garden shed');
  await page.getByRole('button', { name: 'Join' }).click();
  await assert.doesNotReject(page.getByText('Waiting for someone to join garden shed').waitFor({ state: 'visible', timeout: 15000 }));
  await assert.doesNotReject(page.getByText(/Send this link .*\?room=garden\+shed/).waitFor({ state: 'visible' }));
  assert.equal(new URL(page.url()).searchParams.get('room'), 'garden shed');
  assert.equal(await page.getByRole('button', { name: 'Hang up' }).isVisible(), true);

  const other = await lib.openPage(browser, signal, 'garden shed');
  await Promise.all([
    lib.waitForStats(page, lib.callFlowing(10), { what: 'the form-joined page receives' }),
    lib.waitForStats(other, lib.callFlowing(10), { what: 'the link-joined page receives' }),
  ]);
});
