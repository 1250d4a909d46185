// Call setup time, browser ↔ browser through `signal` on this machine: from the moment the
// second person's page sends `join` to the first remote video frame on each page.
//
// "On screen" is the remote <video>'s first requestVideoFrameCallback (the frame was decoded
// and composited); "decoded" is the first getStats() poll (every 20 ms) showing
// framesDecoded > 0, so it trails by up to one poll. Times are epoch milliseconds from
// performance.timeOrigin + now(), comparable across the pages of one browser.
// DUET_SETUP_RUNS sets the number of calls (default 3); DUET_SETUP_OUT writes the results as JSON.
'use strict';

const fs = require('node:fs');
const test = require('node:test');
const assert = require('node:assert/strict');
const lib = require('./lib');

const RUNS = Number(process.env.DUET_SETUP_RUNS || 3);

test(`call setup time, browser ↔ browser (median of ${RUNS})`, { timeout: 60000 + RUNS * 30000 }, async (t) => {
  const signal = await lib.startSignal();
  const browser = await lib.launchChromium();
  t.after(async () => {
    await lib.closeBrowser(browser);
    await signal.stop();
  });
  const runs = [];
  for (let i = 0; i < RUNS; i++) {
    const room = `setup-${i}`;
    const a = await lib.openPage(browser, signal, room);
    await lib.waitForState(a, 'waiting');
    const b = await lib.openPage(browser, signal, room);
    const done = () => window.duet.timings.firstFramePresented && window.duet.timings.firstFrameDecoded;
    try {
      await Promise.all([a.waitForFunction(done, null, { timeout: 20000 }), b.waitForFunction(done, null, { timeout: 20000 })]);
    } catch (e) {
      throw new Error(`run ${i}: no first frame: ${JSON.stringify([await lib.duetState(a), await lib.duetState(b)], null, 1)}`);
    }
    const ta = (await lib.duetState(a)).timings;
    const tb = (await lib.duetState(b)).timings;
    const join = tb.joinSent;
    const run = {
      joinerOnScreenMs: tb.firstFramePresented - join,
      joinerDecodedMs: tb.firstFrameDecoded - join,
      firstOnScreenMs: ta.firstFramePresented - join,
      firstDecodedMs: ta.firstFrameDecoded - join,
      readyToConnectedMs: tb.connected - tb.ready,
    };
    run.bothOnScreenMs = Math.max(run.joinerOnScreenMs, run.firstOnScreenMs);
    runs.push(run);
    t.diagnostic(`run ${i}: ${Object.entries(run).map(([k, v]) => `${k}=${Math.round(v)}`).join(' ')}`);
    await a.context().close();
    await b.context().close();
  }
  const keys = Object.keys(runs[0]);
  const medians = Object.fromEntries(keys.map((k) => [k, Math.round(lib.median(runs.map((r) => r[k])))]));
  const line = `setup (second join → first remote frame), median of ${RUNS}: ${JSON.stringify(medians)}`;
  t.diagnostic(line);
  console.log(line);
  if (process.env.DUET_SETUP_OUT) fs.writeFileSync(process.env.DUET_SETUP_OUT, JSON.stringify({ runs, medians }, null, 2));
  for (const r of runs) {
    assert.ok(r.bothOnScreenMs > 0 && r.bothOnScreenMs < 10000, `setup took ${r.bothOnScreenMs} ms`);
  }
});
