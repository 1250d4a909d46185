// The page's negotiation rules (assets/web/negotiation.js) against the shared scenario table
// (tests/scenarios/*.json), with the matcher of crates/call/src/core_tests.rs: objects match by
// the keys the scenario gives, arrays element by element, and a string starting with `~`
// matches any string containing the rest. No browser needed: the module is pure.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');

const REPO = path.resolve(__dirname, '..', '..');
const SCENARIOS = path.join(REPO, 'tests', 'scenarios');
const { CallCore, checkCandidate, isLoopbackCandidate, sessionId } = require(path.join(REPO, 'assets', 'web', 'negotiation.js'));
const N = require(path.join(REPO, 'assets', 'web', 'negotiation.js'));

/** Whether `actual` matches `expected` (see the header comment). */
function matches(expected, actual) {
  if (typeof expected === 'string' && typeof actual === 'string') {
    return expected.startsWith('~') ? actual.includes(expected.slice(1)) : expected === actual;
  }
  if (Array.isArray(expected)) {
    return Array.isArray(actual) && expected.length === actual.length && expected.every((e, i) => matches(e, actual[i]));
  }
  if (expected !== null && typeof expected === 'object') {
    return (
      actual !== null &&
      typeof actual === 'object' &&
      !Array.isArray(actual) &&
      Object.entries(expected).every(([k, v]) => Object.prototype.hasOwnProperty.call(actual, k) && matches(v, actual[k]))
    );
  }
  return expected === actual;
}

/** Runs one scenario file; returns null or what went wrong, naming the step. */
function runScenario(file) {
  const scenario = JSON.parse(fs.readFileSync(file, 'utf8'));
  const core = new CallCore(scenario.config);
  for (const [i, step] of scenario.steps.entries()) {
    try {
      core.handle(step.in);
    } catch (e) {
      return `step ${i} (input ${JSON.stringify(step.in)}): threw ${e.stack}`;
    }
    const actual = [];
    for (let o; (o = core.poll()) !== undefined; ) actual.push(JSON.parse(JSON.stringify(o)));
    if (!matches(step.out, actual)) {
      return `step ${i} (input ${JSON.stringify(step.in)}):\n  expected ${JSON.stringify(step.out)}\n  actual   ${JSON.stringify(actual)}`;
    }
  }
  if (scenario.counters && !matches(scenario.counters, core.counters())) {
    return `counters: expected ${JSON.stringify(scenario.counters)}, actual ${JSON.stringify(core.counters())}`;
  }
  return null;
}

test('the shared scenario table runs against negotiation.js', (t) => {
  const files = fs
    .readdirSync(SCENARIOS)
    .filter((f) => f.endsWith('.json'))
    .sort();
  assert.ok(files.length >= 20, `scenarios missing: ${files.join(', ')}`);
  const failures = files.map((f) => [f, runScenario(path.join(SCENARIOS, f))]).filter(([, e]) => e !== null);
  t.diagnostic(`${files.length} scenarios, ${files.length - failures.length} passed`);
  assert.equal(failures.length, 0, failures.map(([f, e]) => `${f}: ${e}`).join('\n\n'));
});

test('the matcher itself', () => {
  assert.ok(matches({ a: 1 }, { a: 1, b: 2 }));
  assert.ok(!matches({ a: 1, c: 3 }, { a: 1 }));
  assert.ok(matches('~room', 'the room is full'));
  assert.ok(!matches('room', 'the room is full'));
  assert.ok(!matches([1, 2], [1, 2, 3]));
  assert.ok(!matches(null, false));
});

test('candidate syntax, as in core_tests.rs', () => {
  assert.equal(checkCandidate('candidate:1 1 udp 2130706431 127.0.0.1 5000 typ host'), null);
  assert.equal(checkCandidate('1 1 UDP 2130706431 abcd-1234.local 5000 typ host generation 0'), null);
  assert.equal(checkCandidate('candidate:1 1 tcp 1 10.0.0.1 9 typ relay raddr 1.2.3.4 rport 5'), null);
  assert.equal(checkCandidate('candidate:1 1 udp 1 fe80::1:2 9 typ host'), null);
  for (const bad of [
    '',
    'garbage',
    'candidate:1 1 udp 1 10.0.0.1 5000 typ',
    'candidate:1 x udp 1 10.0.0.1 5000 typ host',
    'candidate:1 1 sctp 1 10.0.0.1 5000 typ host',
    'candidate:1 1 udp -1 10.0.0.1 5000 typ host',
    'candidate:1 1 udp 1 evil.example 5000 typ host',
    'candidate:1 1 udp 1 10.0.0.1 70000 typ host',
    'candidate:1 1 udp 1 10.0.0.1 5000 kind host',
  ]) {
    assert.notEqual(checkCandidate(bad), null, JSON.stringify(bad));
  }
  assert.ok(isLoopbackCandidate('candidate:1 1 udp 2130706431 127.0.0.1 5000 typ host'));
  assert.ok(isLoopbackCandidate('candidate:1 1 udp 2130706431 ::1 5000 typ host'));
  assert.ok(!isLoopbackCandidate('candidate:1 1 udp 2130706431 10.1.2.3 5000 typ host'));
  assert.ok(!isLoopbackCandidate('candidate:1 1 udp 2130706431 abcd.local 5000 typ host'));
  assert.equal(sessionId('v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\n'), 4611731400430051336n);
});

test('nothing happens after the end', () => {
  const core = new CallCore({ room: 'r' });
  core.handle('hang-up');
  while (core.poll() !== undefined);
  assert.ok(core.isOver());
  core.handle({ 'pc-state': 'failed' });
  core.handle({ timer: 'connect' });
  assert.equal(core.poll(), undefined);
});

test('the verification code matches the shared vectors', async () => {
  const vectors = JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'verification', 'vectors.json'), 'utf8'));
  assert.ok(vectors.length >= 3);
  for (const v of vectors) {
    assert.equal(await N.verificationCode(v.a, v.b), v.code, JSON.stringify(v));
    assert.equal(await N.verificationCode(v.b, v.a), v.code, 'symmetric');
  }
  const sdp = 'v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 102\r\na=fingerprint:SHA-256 ab:cd:EF\r\n';
  assert.equal(N.sdpFingerprint(sdp), 'sha-256 AB:CD:EF');
  assert.equal(N.sdpFingerprint('v=0\r\n'), null);
  assert.equal(await N.callCode(sdp, 'v=0\r\n'), null);
});

test('tidyFormats drops per-format lines of payload types the m= line does not list', () => {
  // Firefox 153 after setCodecPreferences: rtcp-fb for its dropped red (122) and ulpfec (123).
  const sdp = [
    'v=0',
    'm=audio 9 UDP/TLS/RTP/SAVPF 109',
    'a=rtpmap:109 opus/48000/2',
    'a=rtcp-fb:122 nack',
    'm=video 9 UDP/TLS/RTP/SAVPF 120 121',
    'a=fmtp:120 max-fs=12288',
    'a=rtcp-fb:120 nack pli',
    'a=rtcp-fb:123 nack',
    'a=rtcp-fb:* ccm fir',
    'a=rtpmap:120 VP8/90000',
    'a=rtpmap:121 VP9/90000',
    'a=rtpmap:122 red/90000',
    'a=fmtp:123 x',
    'a=mid:1',
    '',
  ].join('\r\n');
  const tidy = N.tidyFormats(sdp);
  assert.equal(
    tidy,
    [
      'v=0',
      'm=audio 9 UDP/TLS/RTP/SAVPF 109',
      'a=rtpmap:109 opus/48000/2',
      'm=video 9 UDP/TLS/RTP/SAVPF 120 121',
      'a=fmtp:120 max-fs=12288',
      'a=rtcp-fb:120 nack pli',
      'a=rtcp-fb:* ccm fir',
      'a=rtpmap:120 VP8/90000',
      'a=rtpmap:121 VP9/90000',
      'a=mid:1',
      '',
    ].join('\r\n'),
  );
  // Nothing to take out: unchanged, whatever the line endings; not a string: returned as is.
  const clean = 'v=0\nm=video 9 RTP/SAVPF 96\na=rtpmap:96 VP8/90000\n';
  assert.equal(N.tidyFormats(clean), clean);
  assert.equal(N.tidyFormats(null), null);
});
