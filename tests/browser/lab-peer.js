// One browser peer for the network lab (`call-bench lab`, the app's lab tests): run inside a
// home's namespace with `ip netns exec NS node tests/browser/lab-peer.js …`, it opens the page that
// `signal` serves on the lab's public host, joins the room, lets the call run for `--seconds`,
// and prints one JSON line with getStats numbers once a second (`history`) and at the end
// (`final`).
//
// The page's own `window.duet.stats()` does not carry freezes, jitter-buffer delay or the
// candidate pair's available bitrate, so an init script keeps a reference to every
// RTCPeerConnection the page makes and this script reads the raw getStats report.
//
// Usage: node lab-peer.js --url http://203.0.113.10:8080/?room=R&stun=203.0.113.10:3478
//          --seconds 24 --y4m target/duet-pattern-320x240.y4m
//          [--browser chromium|firefox|firefox-media-blocked]
//
// Chromium (the default) is driven through playwright-core, with `--y4m` as its camera.
// Firefox (Debian's firefox-esr) is driven over WebDriver BiDi (firefox.js) with its own fake
// camera and microphone (it cannot play a Y4M file), ICE on the home's interface;
// `firefox-media-blocked` refuses the page camera and microphone, as a person clicking "Block".
'use strict';

const lib = require('./lib');
const { launchFirefox, LAB_PREFS } = require('./firefox');

function parseArgs(argv) {
  const out = { seconds: 24 };
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i].replace(/^--/, '');
    out[key] = argv[i + 1];
  }
  if (!out.url) throw new Error('--url is required');
  out.seconds = Number(out.seconds);
  return out;
}

/** Runs in the page: the numbers of the newest peer connection's getStats report. */
async function sample() {
  const pcs = window.__labPcs || [];
  const pc = pcs[pcs.length - 1];
  const out = {
    at: Date.now(),
    state: window.duet ? window.duet.state : null,
    offerer: window.duet ? window.duet.offerer : null,
    // Epoch ms: joinSent, ready, connected, firstFrameDecoded, firstFramePresented.
    timings: window.duet ? window.duet.timings : null,
    notice: window.duet ? window.duet.notice : null,
    // How often the page reached the signal server (more than once: it reconnected).
    serverConnects: window.duet ? window.duet.events.filter((e) => e.what === 'server connected').length : 0,
    connection: pc ? pc.connectionState : null,
  };
  if (!pc) return out;
  let report;
  try {
    report = await pc.getStats();
  } catch (e) {
    out.error = String(e); // closed after the other side left
    return out;
  }
  const byId = new Map();
  report.forEach((s) => byId.set(s.id, s));
  let pairId = null;
  report.forEach((s) => {
    if (s.type === 'inbound-rtp' && s.kind === 'video') {
      const codec = s.codecId && byId.get(s.codecId);
      out.in = {
        framesDecoded: s.framesDecoded || 0,
        framesReceived: s.framesReceived || 0,
        framesDropped: s.framesDropped || 0,
        framesPerSecond: s.framesPerSecond || 0,
        freezeCount: s.freezeCount || 0,
        totalFreezesDuration: s.totalFreezesDuration || 0,
        jitterBufferDelay: s.jitterBufferDelay || 0,
        jitterBufferEmittedCount: s.jitterBufferEmittedCount || 0,
        bytesReceived: s.bytesReceived || 0,
        packetsReceived: s.packetsReceived || 0,
        packetsLost: s.packetsLost || 0,
        nackCount: s.nackCount || 0,
        pliCount: s.pliCount || 0,
        frameWidth: s.frameWidth || 0,
        frameHeight: s.frameHeight || 0,
        codec: codec ? codec.mimeType : null,
      };
    } else if (s.type === 'outbound-rtp' && s.kind === 'video') {
      out.out = {
        framesEncoded: s.framesEncoded || 0,
        framesSent: s.framesSent || 0,
        bytesSent: s.bytesSent || 0,
        targetBitrate: s.targetBitrate || 0,
        frameWidth: s.frameWidth || 0,
        frameHeight: s.frameHeight || 0,
        qualityLimitationReason: s.qualityLimitationReason || '',
        encoderImplementation: s.encoderImplementation || '',
        codec: s.codecId && byId.get(s.codecId) ? byId.get(s.codecId).mimeType : null,
      };
    } else if (s.type === 'inbound-rtp' && s.kind === 'audio') {
      out.audioIn = { packetsReceived: s.packetsReceived || 0, bytesReceived: s.bytesReceived || 0 };
    } else if (s.type === 'transport' && s.selectedCandidatePairId) {
      pairId = s.selectedCandidatePairId;
    } else if (s.type === 'candidate-pair' && s.selected && !pairId) {
      pairId = s.id; // Firefox marks the pair instead of naming it on a transport
    }
  });
  const pair = pairId && byId.get(pairId);
  if (pair) {
    const local = byId.get(pair.localCandidateId);
    const remote = byId.get(pair.remoteCandidateId);
    out.pair = {
      availableOutgoingBitrate: pair.availableOutgoingBitrate || 0,
      currentRoundTripTime: pair.currentRoundTripTime === undefined ? null : pair.currentRoundTripTime,
      bytesSent: pair.bytesSent || 0,
      bytesReceived: pair.bytesReceived || 0,
      local: local ? `${local.candidateType} ${local.address || local.ip}:${local.port}` : null,
      remote: remote ? `${remote.candidateType} ${remote.address || remote.ip}:${remote.port}` : null,
    };
  }
  return out;
}

/** The page in Chromium: `drive(page)` runs with the page open; the browser is closed after. */
async function withChromium(args, origin, drive) {
  const browser = await lib.launchChromium({
    args: [
      ...(args.y4m ? [`--use-file-for-fake-video-capture=${args.y4m}`] : []),
      `--unsafely-treat-insecure-origin-as-secure=${origin}`,
    ],
  });
  try {
    const context = await browser.newContext({ viewport: { width: 640, height: 480 } });
    await context.addInitScript(lib.keepPeerConnections);
    const page = await context.newPage();
    const consoleLines = [];
    page.on('console', (m) => consoleLines.push(`${m.type()}: ${m.text()}`));
    page.on('pageerror', (e) => consoleLines.push(`pageerror: ${e.message}`));
    return await drive(page, () => consoleLines, 'chromium');
  } finally {
    await lib.closeBrowser(browser);
  }
}

/** Prefs that refuse camera and microphone without a prompt ("Block"). */
const BLOCK_MEDIA = {
  'media.navigator.permission.disabled': false,
  'permissions.default.camera': 2,
  'permissions.default.microphone': 2,
};

/** The page in Firefox over WebDriver BiDi, like `withChromium`. */
async function withFirefox(args, origin, drive, blocked) {
  const firefox = await launchFirefox({ prefs: { ...LAB_PREFS, ...(blocked ? BLOCK_MEDIA : {}) } });
  try {
    const page = await firefox.newPage();
    await page.addInitScript(lib.keepPeerConnections);
    return await drive(page, () => page.duetConsole, `firefox ${firefox.version}`);
  } finally {
    await firefox.close();
  }
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const origin = new URL(args.url).origin;
  const started = Date.now();
  const guard = lib.hardStop('lab-peer', args.seconds + 40, started);
  const history = [];
  const drive = async (page, consoleLines, browserName) => {
    const joined = Date.now();
    await page.goto(args.url, { timeout: 15000 });
    await page.waitForFunction(() => window.duet !== undefined, null, { timeout: 15000 });
    const end = joined + args.seconds * 1000;
    for (let next = Date.now() + 1000; next <= end; next += 1000) {
      await lib.sleep(Math.max(0, next - Date.now()));
      history.push(await page.evaluate(sample));
    }
    // The last sample with the inbound stream: the page drops its peer connection when the
    // other side leaves first.
    const last = [...history].reverse().find((s) => s.in) || history[history.length - 1] || {};
    return {
      ok: Boolean(last.in && last.in.framesDecoded > 0),
      browser: browserName,
      started,
      joined,
      final: last,
      history,
      console: consoleLines().slice(-20),
    };
  };
  let result;
  try {
    result = args.browser && args.browser.startsWith('firefox')
      ? await withFirefox(args, origin, drive, args.browser === 'firefox-media-blocked')
      : await withChromium(args, origin, drive);
  } catch (e) {
    result = { ok: false, error: String(e && e.stack ? e.stack : e), started, history };
  }
  clearTimeout(guard);
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

main().catch((e) => {
  process.stdout.write(`${JSON.stringify({ ok: false, error: String(e) })}\n`);
  process.exit(1);
});
