// Glare: with `negotiation=seed` both pages ignore the server's `offerer` flag and offer at the
// same time, as clients of the seed server do. The offer collision is settled (one side rolls
// back, the other ignores the remote offer) and the call still comes up.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const lib = require('./lib');

test('both pages offer at once (seed-style): the collision resolves into one call', { timeout: 90000 }, async (t) => {
  const signal = await lib.startSignal();
  const browser = await lib.launchChromium();
  t.after(async () => {
    await lib.closeBrowser(browser);
    await signal.stop();
  });
  const params = { negotiation: 'seed' };
  const a = await lib.openPage(browser, signal, 'glare', { params });
  await lib.waitForState(a, 'waiting');
  const b = await lib.openPage(browser, signal, 'glare', { params });
  const results = await Promise.allSettled([
    lib.waitForStats(a, lib.callFlowing(30), { what: 'A receives' }),
    lib.waitForStats(b, lib.callFlowing(30), { what: 'B receives' }),
  ]);
  const failed = results.filter((r) => r.status === 'rejected');
  // Either side's failure says little without the other's view of the same negotiation.
  if (failed.length > 0) throw new Error(failed.map((r) => r.reason.message).join('\n\n'));
  const events = async (page) => (await page.evaluate(() => window.duet.events.map((e) => e.what))).join('\n');
  const [ea, eb] = [await events(a), await events(b)];
  // Both offered; exactly one rolled back, the other ignored the colliding offer.
  assert.match(ea, /offer sent/);
  assert.match(eb, /offer sent/);
  const rolledBack = [ea, eb].filter((e) => /rolling back our offer/.test(e)).length;
  const ignored = [ea, eb].filter((e) => /ignoring the remote offer/.test(e)).length;
  assert.deepEqual({ rolledBack, ignored }, { rolledBack: 1, ignored: 1 }, `A:\n${ea}\n\nB:\n${eb}`);
});
