// `CallCore` for the web page: the call's signalling and negotiation rules as a pure state
// machine, the same rules and the same vocabulary as crates/call/src/core.rs.
//
// No DOM, no RTCPeerConnection, no timers, no clock. The page (app.js) feeds inputs with
// `handle(input)` and carries out what `poll()` returns — send a signalling message, build or
// close the peer connection, create an offer or an answer, apply a remote description, add a
// candidate, tell the user, arm a timer — and feeds the results back as inputs. Inputs and
// outputs are the plain JSON values that serde gives for the Rust `Input` and `Output`
// (`"joined"`, `{"signal": {...}}`, `{"set-remote": {"type": "offer", "sdp": "..."}}`, ...), so
// both implementations run the same scenario table (tests/scenarios/*.json; run here by
// tests/browser/negotiation.test.js, in Rust by core_tests.rs). Change a rule in both, or in
// neither. Only human-readable reasons may differ in wording (serde's messages for a
// description that is not one).
//
// Loaded by the page as a classic script (`window.DuetNegotiation`) and by Node with require().
'use strict';

(function (root, factory) {
  const api = factory();
  if (typeof module === 'object' && module && module.exports) module.exports = api;
  else root.DuetNegotiation = api;
})(typeof globalThis !== 'undefined' ? globalThis : this, function () {
  /** Remote candidates kept while the remote description is not applied yet. */
  const MAX_PENDING_CANDIDATES = 256;
  /** How long a first connection may take before the call fails with a reason, ms. */
  const CONNECT_TIMEOUT_MS = 15000;
  /** How long `disconnected` may last before the offerer restarts ICE, ms. */
  const DISCONNECT_GRACE_MS = 2000;
  /** How long a restart may take before the call ends, ms. */
  const RESTART_TIMEOUT_MS = 15000;

  /** The call's own timers (cleared with each new peer) and every timer the core knows. */
  const CALL_TIMERS = ['connect', 'disconnect-grace', 'restart'];
  const TIMERS = [...CALL_TIMERS, 'signal-give-up'];
  /** How long the signalling connection may stay lost before the call ends, ms. */
  const SIGNAL_GIVE_UP_MS = 30000;
  /** The longest wait between two reconnection attempts, ms. */
  const MAX_RECONNECT_DELAY_MS = 4000;
  /** Signalling messages kept while the connection is being restored. */
  const MAX_OUTBOX = 128;
  const PC_STATES = ['new', 'connecting', 'connected', 'disconnected', 'failed', 'closed'];
  const ERROR_CODES = [
    'room-full',
    'not-in-room',
    'bad-message',
    'too-large',
    'rate-limited',
    'too-many-rooms',
    'invalid-room',
    'forbidden',
  ];
  const ENDING_CODES = new Set(['room-full', 'invalid-room', 'forbidden', 'too-many-rooms', 'too-large']);

  /**
   * Whether an error code the server sent ends the call (true) or is only a warning: the room
   * cannot be joined (full, invalid name, needs a token, too many rooms) or a message was too
   * large. Unknown codes only warn.
   */
  function endsCall(code) {
    return ENDING_CODES.has(code);
  }

  // ------------------------------------------------------------ syntax helpers (as in Rust)

  const str = (v) => JSON.stringify(String(v));
  const fields = (s) => String(s).split(/\s+/).filter(Boolean);

  /** Rust's `str::parse::<uN>()`: optional `+`, digits, at most `max`. */
  function parseUint(s, max) {
    if (!/^\+?[0-9]+$/.test(s)) return null;
    const n = BigInt(s.replace(/^\+/, ''));
    return n <= max ? n : null;
  }

  function parseIpv4(s) {
    const parts = s.split('.');
    if (parts.length !== 4) return null;
    const out = [];
    for (const p of parts) {
      if (!/^[0-9]{1,3}$/.test(p) || (p.length > 1 && p[0] === '0')) return null;
      const n = Number(p);
      if (n > 255) return null;
      out.push(n);
    }
    return out;
  }

  /** Eight 16-bit groups, or null (Rust's `Ipv6Addr` syntax: no brackets, no zone). */
  function parseIpv6(s) {
    if (!/^[0-9a-fA-F:.]+$/.test(s)) return null;
    const halves = s.split('::');
    if (halves.length > 2) return null;
    const groups = (part, allowV4) => {
      if (part === '') return [];
      const out = [];
      const items = part.split(':');
      for (let i = 0; i < items.length; i++) {
        const g = items[i];
        if (allowV4 && i === items.length - 1 && g.includes('.')) {
          const v4 = parseIpv4(g);
          if (!v4) return null;
          out.push((v4[0] << 8) | v4[1], (v4[2] << 8) | v4[3]);
        } else if (/^[0-9a-fA-F]{1,4}$/.test(g)) {
          out.push(parseInt(g, 16));
        } else {
          return null;
        }
      }
      return out;
    };
    if (halves.length === 1) {
      const g = groups(halves[0], true);
      return g && g.length === 8 ? g : null;
    }
    const head = groups(halves[0], false);
    const tail = groups(halves[1], true);
    if (!head || !tail || head.length + tail.length > 7) return null;
    return [...head, ...new Array(8 - head.length - tail.length).fill(0), ...tail];
  }

  /** `{v4: [..]}` or `{v6: [..]}` for an IP address, else null. */
  function parseIp(s) {
    const v4 = parseIpv4(s);
    if (v4) return { v4 };
    const v6 = parseIpv6(s);
    return v6 ? { v6 } : null;
  }

  /**
   * What is wrong with a candidate line (`candidate:` prefix optional), or null when its syntax
   * is right: `foundation component transport priority address port typ type ...`.
   */
  function checkCandidate(line) {
    const s = String(line).startsWith('candidate:') ? String(line).slice('candidate:'.length) : String(line);
    const f = fields(s);
    if (f.length < 8) return `${f.length} fields, a candidate has at least 8`;
    if (parseUint(f[1], 0xffffn) === null) return `bad component ${str(f[1])}`;
    if (!['udp', 'tcp'].includes(f[2].toLowerCase())) return `bad transport ${str(f[2])}`;
    if (parseUint(f[3], 0xffffffffn) === null) return `bad priority ${str(f[3])}`;
    const addressOk = parseIp(f[4]) !== null || (f[4].endsWith('.local') && /^[A-Za-z0-9.-]+$/.test(f[4]));
    if (!addressOk) return `bad address ${str(f[4])}`;
    if (parseUint(f[5], 0xffffn) === null) return `bad port ${str(f[5])}`;
    if (f[6] !== 'typ' || !['host', 'srflx', 'prflx', 'relay'].includes(f[7])) {
      return `bad type ${str(f[6])} ${str(f[7])}`;
    }
    return null;
  }

  /** The candidate's type (`host`, `srflx`, `prflx`, `relay`), or null. */
  function candidateType(line) {
    const f = fields(line);
    const i = f.indexOf('typ');
    return i >= 0 && i + 1 < f.length ? f[i + 1] : null;
  }

  /** Whether a remote candidate may be used when the call is restricted to loopback. */
  function isLoopbackCandidate(line) {
    const s = String(line).startsWith('candidate:') ? String(line).slice('candidate:'.length) : String(line);
    const address = fields(s)[4];
    const ip = address === undefined ? null : parseIp(address);
    if (!ip) return false;
    if (ip.v4) return ip.v4[0] === 127;
    return ip.v6.slice(0, 7).every((g) => g === 0) && ip.v6[7] === 1;
  }

  /** The session id of an SDP's first `o=` line, as a BigInt (u64), or null. */
  function sessionId(sdp) {
    const line = String(sdp)
      .split('\n')
      .map((l) => l.replace(/\r$/, ''))
      .find((l) => l.startsWith('o='));
    if (line === undefined) return null;
    const id = fields(line.slice(2))[1];
    return id === undefined ? null : parseUint(id, 0xffffffffffffffffn);
  }

  // ------------------------------------------------------------ roles and glare

  /**
   * Glare-safe offer/answer (crates/call/src/negotiation.rs): `ready.offerer` names the
   * impolite side; without it both offer and the larger (or equal) session id backs down.
   */
  class Negotiator {
    constructor(offerer) {
      this.polite = typeof offerer === 'boolean' ? !offerer : null;
      this.localSessionId = null;
    }

    shouldOfferOnReady() {
      return this.polite !== true;
    }

    localOfferMade(sdp) {
      this.localSessionId = sessionId(sdp);
    }

    /** `'ignore'`, `'accept'` or `'rollback-and-accept'`. */
    onRemoteOffer(remoteSdp, haveLocalOffer) {
      if (!haveLocalOffer) return 'accept';
      if (this.polite === null) {
        const remote = sessionId(remoteSdp);
        this.polite = this.localSessionId !== null && remote !== null ? this.localSessionId >= remote : true;
      }
      return this.polite ? 'rollback-and-accept' : 'ignore';
    }
  }

  // ------------------------------------------------------------ the core

  const Health = { CONNECTING: 'connecting', CONNECTED: 'connected', RECONNECTING: 'reconnecting' };

  class Peer {
    constructor(offerer) {
      this.negotiator = new Negotiator(offerer);
      this.haveLocalOffer = false;
      this.hasRemote = false;
      /** `'offer'`/`'answer'` being applied, or null. */
      this.applying = null;
      this.pendingCandidates = [];
      this.health = Health.CONNECTING;
      this.weOffered = false;
      this.gathered = [];
      this.restartWanted = false;
    }

    negotiating() {
      return this.haveLocalOffer || this.hasRemote || this.applying !== null || this.health !== Health.CONNECTING;
    }
  }

  /** A session description of the `expected` kind, or `{error}` saying why it is unusable. */
  function parseDescription(value, expected) {
    const bad = (reason) => ({ error: `the other side sent an invalid ${expected}: ${reason}` });
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      return bad(`invalid type: ${value === null ? 'null' : Array.isArray(value) ? 'sequence' : typeof value}, expected struct Description`);
    }
    if (!('type' in value)) return bad('missing field `type`');
    if (value.type !== 'offer' && value.type !== 'answer') {
      return bad(`unknown variant ${str(value.type)}, expected \`offer\` or \`answer\``);
    }
    if (!('sdp' in value)) return bad('missing field `sdp`');
    if (typeof value.sdp !== 'string') return bad('invalid type for `sdp`, expected a string');
    if (value.type !== expected) return bad(`type is ${value.type}`);
    if (!value.sdp.startsWith('v=0')) return bad('the SDP does not start with v=0');
    return { desc: { type: value.type, sdp: value.sdp } };
  }

  const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);
  const description = (d) => ({ type: String(d && d.type), sdp: String(d && d.sdp) });

  /** See the header comment. `config`: `{room, loopback_only, has_stun, has_turn}`. */
  class CallCore {
    constructor(config) {
      this.config = {
        room: String(config.room),
        loopback_only: Boolean(config.loopback_only),
        has_stun: Boolean(config.has_stun),
        has_turn: Boolean(config.has_turn),
      };
      this.peer = null;
      this.out = [];
      this.armed = new Set();
      this.ended = false;
      this.stats = { glare_ignored: 0, glare_rollbacks: 0, ice_restarts: 0, bad_candidates: 0, signal_reconnects: 0 };
      // The signalling connection: up (sends go out) or being restored (sends wait).
      this.signalUp = true;
      this.outbox = [];
      this.reconnectAttempts = 0;
      this.lastOffer = null;
    }

    /** The next thing to do, or undefined. */
    poll() {
      return this.out.shift();
    }

    /** Whether the call reached a terminal state (ended or failed). */
    isOver() {
      return this.ended;
    }

    /** What the core decided so far (a copy). */
    counters() {
      return { ...this.stats };
    }

    /** Whether a peer connection exists (someone else is in the room). */
    hasPeer() {
      return this.peer !== null;
    }

    /**
     * Takes one input (a string or a one-key object, as serde writes `Input`). Inputs after the
     * call is over are ignored; an input this version does not know throws (a bug in the page).
     */
    handle(input) {
      if (this.ended) return;
      const [kind, value] = typeof input === 'string' ? [input, undefined] : Object.entries(input || {})[0] || [];
      const room = this.config.room;
      switch (kind) {
        case 'joined':
          this.signalUp = true;
          return this.state({ state: 'waiting-for-peer' });
        case 'signal':
          return this.onSignal(value);
        case 'signal-lost':
          return this.onSignalLost(String(value && value.reason));
        case 'signal-restored':
          return this.onSignalRestored();
        case 'local-offer':
          return this.onLocalOffer(description(value));
        case 'local-answer':
          if (this.peer) {
            this.peer.haveLocalOffer = false;
            this.send({ type: 'answer', room, answer: description(value) });
            this.maybeRestart();
          }
          return;
        case 'remote-applied':
          return this.onRemoteApplied(value.kind);
        case 'remote-rejected':
          return this.fail(`the other side sent an invalid ${value.kind}: ${value.reason}`);
        case 'operation-failed':
          return this.fail(`WebRTC: ${value.what}: ${value.reason}`);
        case 'candidate-rejected':
          this.stats.bad_candidates += 1;
          return this.warn(`ignored a candidate the other side sent: ${value.reason}`);
        case 'local-candidate':
          return this.onLocalCandidate(value);
        case 'gathering-complete':
          if (this.peer) this.send({ type: 'candidate', room, candidate: null });
          return;
        case 'pc-state':
          if (!PC_STATES.includes(value)) throw new Error(`unknown pc-state ${str(value)}`);
          return this.onPcState(value);
        case 'hang-up':
          this.send({ type: 'leave', room });
          this.closePeer();
          return this.finish({ state: 'ended' });
        case 'timer':
          if (!TIMERS.includes(value)) throw new Error(`unknown timer ${str(value)}`);
          if (this.armed.delete(value)) this.onTimer(value);
          return;
        default:
          throw new Error(`unknown input ${JSON.stringify(input)}`);
      }
    }

    onSignal(msg) {
      if (!isObject(msg)) return;
      switch (msg.type) {
        case 'ready': {
          if (this.peer && this.peer.negotiating()) {
            // Already being set up (the other side's offer came first) or running (both
            // rejoined a restarted server): a late `ready` must not tear it down.
            return;
          }
          const offerer = typeof msg.offerer === 'boolean' ? msg.offerer : null;
          // Servers signal hands out (an extension seed servers do not send).
          const iceServers = Array.isArray(msg.iceServers)
            ? msg.iceServers.filter((e) => isObject(e) && Array.isArray(e.urls) && e.urls.every((u) => typeof u === 'string'))
            : [];
          const urls = iceServers.flatMap((e) => e.urls);
          if (urls.some((u) => /^stuns?:/.test(u))) this.config.has_stun = true;
          if (urls.some((u) => /^turns?:/.test(u))) this.config.has_turn = true;
          this.newPeer(offerer, iceServers);
          if (this.peer.negotiator.shouldOfferOnReady()) this.push({ 'create-offer': { ice_restart: false } });
          return;
        }
        case 'offer': {
          const r = parseDescription(msg.offer, 'offer');
          return r.error ? this.fail(r.error) : this.onRemoteOffer(r.desc);
        }
        case 'answer': {
          const r = parseDescription(msg.answer, 'answer');
          return r.error ? this.fail(r.error) : this.onRemoteAnswer(r.desc);
        }
        case 'candidate':
          return this.onRemoteCandidate(msg.candidate === undefined ? null : msg.candidate);
        case 'peer-resumed':
          // The other side's connection dropped and came back: an offer still waiting for its
          // answer may be lost, so it goes again.
          this.resendPendingOffer();
          return this.networkChanged();
        case 'peer-left':
          this.closePeer();
          this.cancelTimers();
          this.state({ state: 'peer-left' });
          return this.state({ state: 'waiting-for-peer' });
        case 'error': {
          const code = String(msg.code);
          const message = String(msg.message);
          if (endsCall(ERROR_CODES.includes(code) ? code : null)) return this.fail(message);
          return this.warn(`signal server: ${message}`);
        }
        default:
          // Unknown types are ignored (protocol rule: servers may add some).
          return;
      }
    }

    newPeer(offerer, iceServers = []) {
      this.closePeer();
      this.cancelTimers();
      this.peer = new Peer(offerer);
      this.push({ 'new-peer': iceServers.length ? { offerer, iceServers } : { offerer } });
      this.state({ state: 'connecting' });
      this.arm('connect', CONNECT_TIMEOUT_MS);
    }

    onSignalLost(reason) {
      if (this.signalUp) {
        this.signalUp = false;
        this.reconnectAttempts = 0;
        this.arm('signal-give-up', SIGNAL_GIVE_UP_MS);
        this.warn(`lost the connection to the signal server (${reason}); reconnecting`);
        this.push({ 'reconnect-signal': { in_ms: 0 } });
        return;
      }
      this.reconnectAttempts += 1;
      const delay = Math.min(250 * 2 ** Math.min(this.reconnectAttempts, 5), MAX_RECONNECT_DELAY_MS);
      this.push({ 'reconnect-signal': { in_ms: delay } });
    }

    onSignalRestored() {
      if (this.signalUp) return;
      this.signalUp = true;
      this.reconnectAttempts = 0;
      this.stats.signal_reconnects += 1;
      this.cancel('signal-give-up');
      const queued = this.outbox;
      this.outbox = [];
      const offerQueued = queued.some((m) => m.type === 'offer');
      for (const message of queued) this.push({ send: message });
      if (!offerQueued) this.resendPendingOffer();
      this.networkChanged();
    }

    /**
     * A signalling connection that dropped and came back (ours, or the other side's:
     * `peer-resumed`) while the media path is `disconnected` says that a network changed:
     * waiting out the rest of the grace period would only delay the ICE restart.
     */
    networkChanged() {
      const peer = this.peer;
      if (this.armed.has('disconnect-grace') && peer && peer.health === Health.CONNECTED) {
        this.cancel('disconnect-grace');
        this.lostConnection();
      }
    }

    resendPendingOffer() {
      const peer = this.peer;
      if (peer && peer.haveLocalOffer && !peer.applying && this.lastOffer) {
        this.send({ type: 'offer', room: this.config.room, offer: this.lastOffer });
      }
    }

    onLocalOffer(desc) {
      const peer = this.peer;
      if (!peer) return;
      peer.negotiator.localOfferMade(desc.sdp);
      peer.haveLocalOffer = true;
      this.lastOffer = desc;
      this.send({ type: 'offer', room: this.config.room, offer: desc });
    }

    onRemoteOffer(desc) {
      // The other side saw `ready` (or was told to offer) before we did: take its offer.
      if (!this.peer) this.newPeer(false);
      const peer = this.peer;
      const action = peer.negotiator.onRemoteOffer(desc.sdp, peer.haveLocalOffer);
      if (action === 'ignore') {
        this.stats.glare_ignored += 1;
        return;
      }
      if (action === 'rollback-and-accept') {
        this.stats.glare_rollbacks += 1;
        peer.haveLocalOffer = false;
        this.push('rollback');
      }
      peer.applying = 'offer';
      if (peer.health === Health.CONNECTING) peer.weOffered = false;
      this.push({ 'set-remote': desc });
    }

    onRemoteAnswer(desc) {
      const peer = this.peer;
      // No peer, or a stale answer to an offer we rolled back: harmless.
      if (!peer || !peer.haveLocalOffer) return;
      peer.applying = 'answer';
      this.push({ 'set-remote': desc });
    }

    onRemoteApplied(kind) {
      const peer = this.peer;
      if (!peer) return;
      peer.applying = null;
      peer.hasRemote = true;
      for (const candidate of peer.pendingCandidates.splice(0)) this.push({ 'add-candidate': candidate });
      if (kind === 'offer') {
        this.push('create-answer');
      } else {
        peer.haveLocalOffer = false;
        if (peer.health === Health.CONNECTING) peer.weOffered = true;
        this.maybeRestart();
      }
    }

    onLocalCandidate(candidate) {
      const peer = this.peer;
      if (!peer) return;
      const line = isObject(candidate) && typeof candidate.candidate === 'string' ? candidate.candidate : null;
      const kind = line === null ? null : candidateType(line);
      if (kind !== null && !peer.gathered.includes(kind)) peer.gathered.push(kind);
      let sent = candidate;
      // webrtc-rs leaves sdpMid empty; browsers want the bundled m-line's mid.
      if (isObject(candidate) && candidate.sdpMid === '') sent = { ...candidate, sdpMid: '0' };
      this.send({ type: 'candidate', room: this.config.room, candidate: sent });
    }

    onRemoteCandidate(candidate) {
      const peer = this.peer;
      if (!peer) return;
      if (candidate === null) return; // end of candidates
      const line = isObject(candidate) && typeof candidate.candidate === 'string' ? candidate.candidate : null;
      if (line === null) {
        this.stats.bad_candidates += 1;
        return this.warn('ignored a candidate the other side sent: no `candidate` field');
      }
      if (line === '') return; // end of candidates, browser style
      const problem = checkCandidate(line);
      if (problem !== null) {
        this.stats.bad_candidates += 1;
        return this.warn(`ignored a candidate the other side sent: ${problem}`);
      }
      if (this.config.loopback_only && !isLoopbackCandidate(line)) return;
      if (!peer.hasRemote || peer.applying !== null) {
        if (peer.pendingCandidates.length < MAX_PENDING_CANDIDATES) peer.pendingCandidates.push(candidate);
        return;
      }
      this.push({ 'add-candidate': candidate });
    }

    onPcState(state) {
      const peer = this.peer;
      if (!peer) return;
      if (state === 'connected') {
        const first = peer.health === Health.CONNECTING;
        const back = peer.health === Health.RECONNECTING;
        peer.health = Health.CONNECTED;
        if (first) {
          this.cancel('connect');
          this.push('start-media');
          this.state({ state: 'connected' });
        } else {
          this.cancel('disconnect-grace');
          if (back) {
            this.cancel('restart');
            this.state({ state: 'connected' });
          }
        }
      } else if (state === 'disconnected') {
        if (peer.health === Health.CONNECTED) {
          this.arm('disconnect-grace', DISCONNECT_GRACE_MS);
          // The network change that broke the media path may have broken signalling silently.
          if (this.signalUp) this.push('probe-signal');
        }
      } else if (state === 'failed') {
        if (peer.health === Health.CONNECTING) this.fail(`could not connect to the other side: ${this.noPathReason()}`);
        else this.lostConnection();
      }
    }

    onTimer(timer) {
      if (timer === 'signal-give-up') {
        if (!this.signalUp) this.fail('signal server: the connection to the signal server was lost and could not be restored');
        return;
      }
      const peer = this.peer;
      if (!peer) return;
      if (timer === 'connect') {
        if (peer.health === Health.CONNECTING) this.fail(`could not connect to the other side: ${this.noPathReason()}`);
      } else if (timer === 'disconnect-grace') {
        if (peer.health === Health.CONNECTED) this.lostConnection();
      } else if (timer === 'restart') {
        if (peer.health === Health.RECONNECTING) {
          this.fail('could not connect to the other side: the connection to the other side was lost and could not be restored');
        }
      }
    }

    /** The media path is gone: show it, and have the side that offered restart ICE. */
    lostConnection() {
      const peer = this.peer;
      if (!peer) return;
      const firstLoss = peer.health !== Health.RECONNECTING;
      peer.health = Health.RECONNECTING;
      if (firstLoss) {
        this.state({ state: 'reconnecting' });
        this.arm('restart', RESTART_TIMEOUT_MS);
      }
      if (peer.weOffered) peer.restartWanted = true;
      this.maybeRestart();
    }

    /** Sends the restart offer once no offer is in flight. */
    maybeRestart() {
      const peer = this.peer;
      if (!peer) return;
      if (peer.restartWanted && !peer.haveLocalOffer && peer.applying === null) {
        peer.restartWanted = false;
        this.stats.ice_restarts += 1;
        this.push({ 'create-offer': { ice_restart: true } });
      }
    }

    /** Why no path was found, from what was configured and gathered. */
    noPathReason() {
      const gathered = this.peer ? this.peer.gathered : [];
      if (gathered.includes('relay')) return 'no connection could be made, not even through the relay (TURN) server';
      if (this.config.has_turn) {
        return 'the relay (TURN) server could not be reached: UDP seems blocked on this network, and duet needs a TURN server reachable over UDP';
      }
      if (this.config.has_stun && !gathered.includes('srflx')) {
        return 'the STUN server did not answer: UDP seems blocked on this network; duet needs a TURN server reachable over UDP';
      }
      return 'no relay (TURN) server was offered and a direct connection failed (both sides may be behind strict NATs)';
    }

    closePeer() {
      if (this.peer) {
        this.peer = null;
        this.push('close-peer');
      }
    }

    cancelTimers() {
      for (const timer of CALL_TIMERS) this.cancel(timer);
    }

    cancel(timer) {
      if (this.armed.delete(timer)) this.push({ 'cancel-timer': timer });
    }

    arm(timer, inMs) {
      this.armed.add(timer);
      this.push({ 'arm-timer': { timer, in_ms: inMs } });
    }

    push(output) {
      this.out.push(output);
    }

    send(message) {
      if (this.signalUp) {
        this.push({ send: message });
        return;
      }
      if (this.outbox.length >= MAX_OUTBOX) this.outbox.shift();
      this.outbox.push(message);
    }

    state(state) {
      this.push({ state });
    }

    warn(message) {
      this.push({ warning: message });
    }

    fail(reason) {
      this.closePeer();
      this.finish({ state: 'failed', detail: reason });
    }

    finish(state) {
      this.ended = true;
      this.cancelTimers();
      this.cancel('signal-give-up');
      this.state(state);
    }
  }

  /**
   * The DTLS fingerprint an SDP carries (the first `a=fingerprint:` line), normalised as
   * crates/call/src/verify.rs does: `sha-256 AB:CD:…`; null when there is none.
   */
  function sdpFingerprint(sdp) {
    if (typeof sdp !== 'string') return null;
    for (const raw of sdp.split(/\r?\n/)) {
      const line = raw.trim();
      if (!line.startsWith('a=fingerprint:')) continue;
      const rest = line.slice('a=fingerprint:'.length).trim();
      const space = rest.indexOf(' ');
      if (space <= 0) return null;
      const value = rest.slice(space + 1).trim();
      if (!value) return null;
      return `${rest.slice(0, space).toLowerCase()} ${value.toUpperCase()}`;
    }
    return null;
  }

  /**
   * The six-digit verification code of two fingerprints, either order (crates/call/src/verify.rs
   * explains it). Resolves to `"123 456"`. Uses WebCrypto (browsers, Node ≥ 19).
   */
  async function verificationCode(a, b) {
    const [first, second] = a <= b ? [a, b] : [b, a];
    const bytes = new TextEncoder().encode(`duet-verify-v1\n${first}\n${second}`);
    const digest = new Uint8Array(await globalThis.crypto.subtle.digest('SHA-256', bytes));
    const n = ((digest[0] << 24) >>> 0) + (digest[1] << 16) + (digest[2] << 8) + digest[3];
    const code = n % 1000000;
    const pad = (x) => String(x).padStart(3, '0');
    return `${pad(Math.floor(code / 1000))} ${pad(code % 1000)}`;
  }

  /**
   * The code of a call from its local and remote SDP; null until both carry a fingerprint, and
   * null where WebCrypto is missing (a page on plain http other than localhost is not a secure
   * context: browsers then have no `crypto.subtle`, and no camera either).
   */
  async function callCode(localSdp, remoteSdp) {
    const a = sdpFingerprint(localSdp);
    const b = sdpFingerprint(remoteSdp);
    if (!a || !b || !(globalThis.crypto && globalThis.crypto.subtle)) return null;
    return verificationCode(a, b);
  }

  /**
   * A remote description with the per-format lines (`a=rtpmap:`, `a=fmtp:`, `a=rtcp-fb:`) of
   * payload types its section's `m=` line does not list taken out. Firefox 153, after
   * `setCodecPreferences`, keeps `a=rtcp-fb:` lines for the formats it dropped, and Chromium
   * then refuses the whole offer ("Failed to parse codecs correctly"). Wildcard lines
   * (`a=rtcp-fb:*`) and everything else stay as they are; line endings are kept.
   */
  function tidyFormats(sdp) {
    if (typeof sdp !== 'string') return sdp;
    const eol = sdp.includes('\r\n') ? '\r\n' : '\n';
    let formats = null; // the current m= section's payload types; null before the first
    const kept = [];
    for (const line of sdp.split(/\r?\n/)) {
      if (line.startsWith('m=')) {
        formats = new Set(line.split(' ').slice(3));
      } else if (formats) {
        const m = /^a=(rtpmap|fmtp|rtcp-fb):(\S+)/.exec(line);
        if (m && m[2] !== '*' && !formats.has(m[2])) continue;
      }
      kept.push(line);
    }
    return kept.join(eol);
  }

  return {
    CallCore,
    tidyFormats,
    sdpFingerprint,
    verificationCode,
    callCode,
    Negotiator,
    endsCall,
    checkCandidate,
    candidateType,
    isLoopbackCandidate,
    sessionId,
    MAX_PENDING_CANDIDATES,
    CONNECT_TIMEOUT_MS,
    DISCONNECT_GRACE_MS,
    RESTART_TIMEOUT_MS,
  };
});
