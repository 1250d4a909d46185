// Signal server unreachable: the page says it lost the server and keeps retrying; when the
// server is back (same address) the page rejoins its room by itself and can be called again.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const lib = require('./lib');

test('server goes away → "Lost the connection…" → server back → rejoined and callable', { timeout: 90000 }, async (t) => {
  let signal = await lib.startSignal();
  const browser = await lib.launchChromium();
  t.after(async () => {
    await lib.closeBrowser(browser);
    await signal.stop();
  });
  const a = await lib.openPage(browser, signal, 'flaky');
  await lib.waitForState(a, 'waiting');

  await signal.stop();
  await assert.doesNotReject(
    a.getByText('Lost the connection to the signalling server.').waitFor({ state: 'visible', timeout: 10000 }),
  );
  await assert.doesNotReject(a.getByText(/Retrying in \d+ s/).waitFor({ state: 'visible' }));
  await assert.doesNotReject(a.locator('#badge', { hasText: 'Offline' }).waitFor());
  // Still down on the next attempt: now it says it cannot reach it.
  await assert.doesNotReject(
    a.getByText('Cannot reach the signalling server.').waitFor({ state: 'visible', timeout: 10000 }),
  );
  assert.equal((await lib.duetState(a)).lastError.code, 'server-unreachable');

  signal = await lib.startSignal({ port: signal.port });
  await lib.waitForState(a, 'waiting', { timeoutMs: 20000 });
  const b = await lib.openPage(browser, signal, 'flaky');
  await Promise.all([
    lib.waitForStats(a, lib.callFlowing(10), { what: 'A receives after the server came back' }),
    lib.waitForStats(b, lib.callFlowing(10), { what: 'B receives' }),
  ]);
});
