// Peer left: when one person clicks "Hang up", the other page goes back to waiting in the same
// room, and a new person can then join it and get a working call.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const lib = require('./lib');

test('hang up → the other page waits again → a third page joins and calls', { timeout: 120000 }, async (t) => {
  const signal = await lib.startSignal();
  const browser = await lib.launchChromium();
  t.after(async () => {
    await lib.closeBrowser(browser);
    await signal.stop();
  });
  const a = await lib.openPage(browser, signal, 'revolving');
  await lib.waitForState(a, 'waiting');
  const b = await lib.openPage(browser, signal, 'revolving');
  await Promise.all([
    lib.waitForStats(a, lib.callFlowing(10), { what: 'A receives' }),
    lib.waitForStats(b, lib.callFlowing(10), { what: 'B receives' }),
  ]);

  await b.getByRole('button', { name: 'Hang up' }).click();
  await assert.doesNotReject(b.getByText('You left the call').waitFor({ state: 'visible' }));
  await assert.doesNotReject(b.getByRole('button', { name: 'Join again' }).waitFor({ state: 'visible' }));
  assert.equal(await b.evaluate(() => document.getElementById('local-box').hidden), true, 'B released its camera preview');

  await assert.doesNotReject(a.getByText('Waiting for someone to join revolving').waitFor({ state: 'visible', timeout: 10000 }));
  await assert.doesNotReject(a.getByText('The other person left the call.').waitFor({ state: 'visible' }));
  assert.equal(await a.evaluate(() => window.duet.stats()), null, 'A closed its peer connection');

  const c = await lib.openPage(browser, signal, 'revolving');
  const [sa, sc] = await Promise.all([
    lib.waitForStats(a, lib.callFlowing(60), { what: 'A receives from C' }),
    lib.waitForStats(c, lib.callFlowing(60), { what: 'C receives from A' }),
  ]);
  assert.equal(sa.video.codec.mimeType, 'video/H264');
  assert.equal(sc.video.codec.mimeType, 'video/H264');
  const da = await lib.duetState(a);
  assert.equal(da.peerConnections, 2, 'A used a fresh RTCPeerConnection for C');
  assert.equal(da.offerer, true, 'the one who stayed offers to the newcomer');
  assert.equal((await lib.duetState(c)).offerer, false);

  // And B can come back once C has left.
  await c.getByRole('button', { name: 'Hang up' }).click();
  await lib.waitForState(a, 'waiting');
  await b.getByRole('button', { name: 'Join again' }).click();
  await Promise.all([
    lib.waitForStats(a, lib.callFlowing(10), { what: 'A receives from B again' }),
    lib.waitForStats(b, lib.callFlowing(10), { what: 'B receives from A again' }),
  ]);
});
