// The page's controls in Firefox, inside a network-lab home (Firefox gathers no ICE candidate
// on loopback, so it is tested where it has a real interface). Run with
// `ip netns exec NS node tests/browser/lab-ui.js --url URL --peer-leaves-after S`, with another
// peer (`duet call`) joining the same room and leaving after about S seconds. Walks through
// what a person does and prints one JSON line: `{ ok, browser, steps: [{ name, ok, detail }] }`.
//
// Steps: the call connects (badge, own preview, remote video playing, stats line, verification
// code); mute and unmute; camera off and on; a third person is told the room is full; the
// other person leaves (the page waits for someone again); hang up ("Join again").
'use strict';

const lib = require('./lib');
const { launchFirefox, LAB_PREFS } = require('./firefox');

function parseArgs(argv) {
  const out = {};
  for (let i = 0; i < argv.length; i += 2) out[argv[i].replace(/^--/, '')] = argv[i + 1];
  if (!out.url) throw new Error('--url is required');
  out.peerLeavesAfter = Number(out['peer-leaves-after'] || 30);
  return out;
}

/** Runs in the page: what a person sees, in one object. */
function look() {
  const el = (id) => document.getElementById(id);
  const shown = (id) => Boolean(el(id) && el(id).checkVisibility());
  const pcs = window.__labPcs || [];
  const pc = pcs[pcs.length - 1];
  const senders = pc && pc.connectionState !== 'closed' ? pc.getSenders() : [];
  const track = (kind) => senders.map((s) => s.track).find((t) => t && t.kind === kind);
  return {
    state: window.duet.state,
    message: el('message').textContent,
    badge: el('badge').textContent,
    localShown: shown('local-box'),
    localWidth: el('local-video').videoWidth,
    localOffShown: shown('local-off'),
    remoteWidth: el('remote-video').videoWidth,
    remoteTime: el('remote-video').currentTime,
    statsLine: el('stats-line').textContent,
    verify: shown('verify') ? el('verify').textContent : '',
    micPressed: el('mic-button').getAttribute('aria-pressed'),
    cameraPressed: el('camera-button').getAttribute('aria-pressed'),
    micEnabled: track('audio') ? track('audio').enabled : null,
    cameraEnabled: track('video') ? track('video').enabled : null,
    rejoinShown: shown('rejoin-button'),
  };
}


async function main() {
  const args = parseArgs(process.argv.slice(2));
  const started = Date.now();
  const guard = lib.hardStop('lab-ui', args.peerLeavesAfter + 60, started);
  const steps = [];
  let firefox;
  let page;
  /** Waits until `check(look())` holds (or `ms` passes) and records the step. */
  const step = async (name, check, ms = 15000) => {
    const deadline = Date.now() + ms;
    let seen;
    for (;;) {
      seen = await page.evaluate(look);
      if (check(seen)) break;
      if (Date.now() > deadline) break;
      await lib.sleep(200);
    }
    const ok = Boolean(check(seen));
    steps.push({ name, ok, at: Date.now() - started, detail: seen });
    return ok;
  };
  const click = (id) => page.evaluate((i) => document.getElementById(i).click(), id);
  let result;
  try {
    firefox = await launchFirefox({ prefs: LAB_PREFS });
    page = await firefox.newPage();
    await page.addInitScript(lib.keepPeerConnections);
    await page.goto(args.url);
    await page.waitForFunction(() => window.duet !== undefined, null, { timeout: 15000 });
    await step('the call connects', (s) => s.state === 'connected', 30000);
    let t0 = null;
    await step(
      'badge, own preview, remote video playing, stats line and code are shown',
      (s) => {
        if (t0 === null) t0 = s.remoteTime;
        return (
          s.badge === 'Connected' &&
          s.localShown &&
          s.localWidth > 0 &&
          s.remoteWidth > 0 &&
          s.remoteTime > t0 + 0.5 &&
          s.statsLine.length > 0 &&
          /^Code \d{3} \d{3}$/.test(s.verify)
        );
      },
    );
    await click('mic-button');
    await step('mute: the button is pressed and the microphone track is off', (s) => s.micPressed === 'true' && s.micEnabled === false);
    await lib.sleep(3000); // the other side hears silence meanwhile
    await click('mic-button');
    await step('unmute', (s) => s.micPressed === 'false' && s.micEnabled === true);
    await click('camera-button');
    await step(
      'camera off: the button is pressed, the preview says so, the camera track is off',
      (s) => s.cameraPressed === 'true' && s.localOffShown && s.cameraEnabled === false,
    );
    await lib.sleep(2000);
    await click('camera-button');
    await step('camera on', (s) => s.cameraPressed === 'false' && !s.localOffShown && s.cameraEnabled === true);
    const third = await firefox.newPage();
    await third.goto(args.url);
    const full = await (async () => {
      const deadline = Date.now() + 15000;
      for (;;) {
        const s = await third.evaluate(() => (window.duet ? { state: window.duet.state, message: document.getElementById('message').textContent } : null));
        if ((s && s.state === 'full') || Date.now() > deadline) return s;
        await lib.sleep(200);
      }
    })();
    steps.push({
      name: 'a third person is told the room is full',
      ok: Boolean(full && full.state === 'full' && /is full/.test(full.message)),
      at: Date.now() - started,
      detail: full,
    });
    await step('the call goes on meanwhile', (s) => s.state === 'connected');
    await step(
      'the other person leaves: the page waits for someone again',
      (s) => s.state === 'waiting' && /Waiting for someone to join/.test(s.message),
      (args.peerLeavesAfter + 20) * 1000,
    );
    await click('hangup-button');
    await step('hang up: "Join again" is offered', (s) => s.state === 'left' && s.rejoinShown);
    result = { ok: steps.every((s) => s.ok), browser: `firefox ${firefox.version}`, started, steps, console: page.duetConsole.slice(-20) };
  } catch (e) {
    result = { ok: false, error: String(e && e.stack ? e.stack : e), started, steps, console: page ? page.duetConsole.slice(-20) : [] };
  } finally {
    if (firefox) await firefox.close();
  }
  clearTimeout(guard);
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

main().catch((e) => {
  process.stdout.write(`${JSON.stringify({ ok: false, error: String(e) })}\n`);
  process.exit(1);
});
