// Firefox ↔ Chromium through `signal`, where a Firefox can be driven (see README.md).
//
// Firefox is started headless over WebDriver BiDi (firefox.js) with fake camera/microphone
// prefs. It must gather a loopback ICE candidate: tests may only use loopback addresses.
// Firefox ESR 153 on Debian 12 gathers none (its `media.peerconnection.ice.loopback` and
// `force_interface=lo` prefs have no effect there), so on such a machine this test is skipped
// with a loud message. DUET_FIREFOX_ANY_INTERFACE=1 lets it use every interface instead, for
// machines where that is allowed. DUET_REQUIRE_FIREFOX=1 turns every skip into a failure.
// Firefox without the OpenH264 plugin (which it downloads itself, impossible here) has no
// H.264, so the codec is reported, not asserted.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const lib = require('./lib');
const { launchFirefox, findFirefox } = require('./firefox');

const anyInterface = process.env.DUET_FIREFOX_ANY_INTERFACE === '1';
const required = process.env.DUET_REQUIRE_FIREFOX === '1';

function skipLoudly(t, why) {
  const text = `FIREFOX TEST SKIPPED: ${why}`;
  console.error(`\n${'!'.repeat(text.length)}\n${text}\n${'!'.repeat(text.length)}\n`);
  if (required) assert.fail(text);
  t.skip(text);
}

test('Firefox ↔ Chromium call: ≥ 60 video frames decoded and audio both ways', { timeout: 120000 }, async (t) => {
  if (!findFirefox()) return skipLoudly(t, 'no Firefox installed (apt-get install firefox-esr)');
  const signal = await lib.startSignal();
  let firefox = null;
  let chromium = null;
  t.after(async () => {
    if (firefox) await firefox.close();
    await lib.closeBrowser(chromium);
    await signal.stop();
  });
  try {
    firefox = await launchFirefox();
  } catch (e) {
    return skipLoudly(t, `Firefox could not be driven over WebDriver BiDi: ${e.message.split('\n')[0]}`);
  }
  t.diagnostic(`Firefox ${firefox.version}`);
  const params = anyInterface ? { loopback: '0' } : {};
  const ff = await firefox.newPage();
  await ff.goto(lib.pageUrl(signal, 'fox', params));
  if (!anyInterface) {
    const hosts = await ff.evaluate(async () => {
      const pc = new RTCPeerConnection();
      pc.addTransceiver('audio');
      const found = [];
      const done = new Promise((resolve) => {
        pc.onicecandidate = (e) => (e.candidate ? found.push(e.candidate.candidate) : resolve());
        setTimeout(resolve, 3000);
      });
      await pc.setLocalDescription();
      await done;
      pc.close();
      return found.map((c) => c.split(' ')[4]).filter(Boolean);
    });
    if (!hosts.some((a) => /^127\./.test(a) || a === '::1')) {
      return skipLoudly(
        t,
        `Firefox ${firefox.version} gathers no loopback ICE candidate (${hosts.length ? `only ${[...new Set(hosts)].join(', ')}` : 'none at all'}), and tests may use loopback only. Set DUET_FIREFOX_ANY_INTERFACE=1 where other interfaces may be used.`,
      );
    }
  }
  await lib.waitForState(ff, 'waiting');
  chromium = await lib.launchChromium();
  const ch = await lib.openPage(chromium, signal, 'fox', { params });
  const [sf, sc] = await Promise.all([
    lib.waitForStats(ff, lib.callFlowing(60), { what: 'Firefox receives video and audio' }),
    lib.waitForStats(ch, lib.callFlowing(60), { what: 'Chromium receives video and audio' }),
  ]);
  t.diagnostic(`codecs: Chromium → Firefox ${sf.video.codec && sf.video.codec.mimeType}, Firefox → Chromium ${sc.video.codec && sc.video.codec.mimeType}`);
  assert.equal((await lib.duetState(ff)).offerer, true, 'Firefox, first in the room, offered');
});
