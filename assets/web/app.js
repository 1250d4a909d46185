// duet's browser client: one page, no framework, no build step, nothing fetched at run time.
//
// It speaks the `signal` protocol (docs/protocol.md) over a WebSocket on the origin that served
// it, and negotiates like the native engine: on `ready` the side told `offerer: true` offers;
// the other side is *polite* (on an offer collision it rolls back its own offer and answers the
// remote one) and the offerer is *impolite* (it ignores a colliding offer). Without an `offerer`
// flag (a seed-style server) both sides offer on `ready` and the collision is settled by
// comparing the session ids on the two offers' `o=` lines: the side whose own id is larger (or
// equal) is polite — the same rule as the native engine (crates/call/src/negotiation.rs), so
// a browser and a desktop app agree too.
//
// URL parameters: `room` (join at once), `token` (sent with `join`), `stun` (comma-separated
// STUN servers; none by default), `loopback=1` (only 127.0.0.1/::1 ICE candidates: tests on
// machines whose other interfaces must not be used), `negotiation=seed` (ignore the `offerer`
// flag, as with the seed server: tests the glare path).
//
// `window.duet` is a small read-only test hook: state, last error, timings and `stats()`.
'use strict';

/** The session id of an SDP's `o=` line as a BigInt, or null. */
function sessionId(sdp) {
  const m = /^o=\S+ (\d+) /m.exec(sdp || '');
  return m ? BigInt(m[1]) : null;
}

(() => {
  const $ = (id) => document.getElementById(id);
  const params = new URLSearchParams(location.search);

  const config = {
    room: (params.get('room') || '').trim(),
    token: params.get('token'),
    iceServers: (params.get('stun') || '')
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean)
      .map((s) => ({ urls: /^stuns?:/.test(s) ? s : `stun:${s}` })),
    loopbackOnly: params.get('loopback') === '1',
    ignoreOfferer: params.get('negotiation') === 'seed',
  };

  const VIDEO_CONSTRAINTS = {
    width: { ideal: 1280 },
    height: { ideal: 720 },
    frameRate: { ideal: 30 },
  };
  const AUDIO_CONSTRAINTS = { echoCancellation: true, noiseSuppression: true, autoGainControl: true };

  // Error codes from the server that refuse a `join` (anything not listed in NON_FATAL).
  const NON_FATAL_ERRORS = new Set(['rate-limited', 'not-in-room', 'bad-message']);

  const ui = {
    remoteVideo: $('remote-video'),
    localBox: $('local-box'),
    localVideo: $('local-video'),
    localOff: $('local-off'),
    overlay: $('overlay'),
    message: $('message'),
    detail: $('detail'),
    joinForm: $('join-form'),
    roomInput: $('room-input'),
    retryButton: $('retry-button'),
    rejoinButton: $('rejoin-button'),
    soundButton: $('sound-button'),
    roomLabel: $('room-label'),
    badge: $('badge'),
    statsLine: $('stats-line'),
    notice: $('notice'),
    controls: $('controls'),
    micButton: $('mic-button'),
    cameraButton: $('camera-button'),
    hangupButton: $('hangup-button'),
    cameraSelect: $('camera-select'),
    micSelect: $('mic-select'),
  };

  const epochMs = () => performance.timeOrigin + performance.now();
  const loadedAt = performance.now();

  /** The test hook. Tests read it; the page never reads it back. */
  const hook = {
    state: 'idle',
    room: null,
    offerer: null,
    lastError: null,
    message: '',
    notice: '',
    events: [],
    /** Epoch milliseconds (comparable across pages of one browser). */
    timings: {},
    /** RTCPeerConnections created so far (a fresh one per peer). */
    peerConnections: 0,
    stats: () => (call ? call.readStats() : Promise.resolve(null)),
    join: (room) => join(room),
    hangup: () => hangup(),
  };
  window.duet = hook;

  function log(what, fields) {
    const entry = { t: Math.round(performance.now() - loadedAt), what, ...fields };
    hook.events.push(entry);
    if (hook.events.length > 300) hook.events.shift();
    console.debug('[duet]', what, fields || '');
  }

  // ---------------------------------------------------------------- state and what the user sees

  const BADGES = {
    idle: 'Not connected',
    media: 'Starting…',
    signalling: 'Connecting…',
    offline: 'Offline',
    waiting: 'Waiting',
    connecting: 'Connecting…',
    connected: 'Connected',
    failed: 'Failed',
    full: 'Room full',
    refused: 'Refused',
    left: 'Left',
  };

  function setState(state, message, detail = '') {
    hook.state = state;
    hook.message = message;
    ui.badge.textContent = BADGES[state] || state;
    ui.badge.dataset.state = state;
    ui.message.textContent = message;
    ui.detail.textContent = detail;
    ui.overlay.hidden = state === 'connected';
    ui.joinForm.hidden = !(state === 'idle' || state === 'full' || state === 'refused');
    ui.retryButton.hidden = state !== 'full';
    ui.rejoinButton.hidden = state !== 'left';
    const inRoom = ['waiting', 'connecting', 'connected', 'failed', 'media', 'signalling', 'offline'];
    ui.controls.hidden = !(inRoom.includes(state) && wantRoom);
    document.body.dataset.state = state;
    log('state', { state, message });
  }

  function showNotice(text) {
    hook.notice = text;
    ui.notice.textContent = text;
    ui.notice.hidden = !text;
  }

  function fail(code, message) {
    hook.lastError = { code, message };
    log('error', { code, message });
  }

  function waitingText() {
    return `Waiting for someone to join ${config.room}`;
  }

  function shareLink() {
    const u = new URL(location.pathname, location.origin);
    u.searchParams.set('room', config.room);
    if (config.token) u.searchParams.set('token', config.token);
    return u.toString();
  }

  // ---------------------------------------------------------------- local media

  const localStream = new MediaStream();
  let micMuted = false;
  let cameraOff = false;

  const localTrack = (kind) => localStream.getTracks().find((t) => t.kind === kind) || null;

  function describeMediaError(e, what) {
    switch (e && e.name) {
      case 'NotAllowedError':
      case 'SecurityError':
        return `${what} access was blocked`;
      case 'NotFoundError':
      case 'OverconstrainedError':
        return `no ${what.toLowerCase()} was found`;
      case 'NotReadableError':
      case 'AbortError':
        return `the ${what.toLowerCase()} is in use by another program or could not be started`;
      default:
        return `the ${what.toLowerCase()} could not be opened (${(e && e.message) || e})`;
    }
  }

  const capitalise = (text) => text.charAt(0).toUpperCase() + text.slice(1);

  async function getMedia(constraints) {
    return navigator.mediaDevices.getUserMedia(constraints);
  }

  /** Opens camera and microphone, each on its own if both together fail; never throws. */
  async function startMedia() {
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      fail('no-media', 'camera and microphone need https:// or localhost');
      showNotice(
        'This page cannot use a camera or microphone here (it needs https:// or localhost). ' +
          'You can still join: you will see and hear the other person, but they will not see or hear you.',
      );
      return;
    }
    const video = { ...VIDEO_CONSTRAINTS };
    const audio = { ...AUDIO_CONSTRAINTS };
    if (ui.cameraSelect.value) video.deviceId = { ideal: ui.cameraSelect.value };
    if (ui.micSelect.value) audio.deviceId = { ideal: ui.micSelect.value };
    let videoError = null;
    let audioError = null;
    let stream = null;
    try {
      stream = await getMedia({ video, audio });
    } catch (both) {
      log('getUserMedia failed', { name: both.name, message: both.message });
      stream = new MediaStream();
      try {
        (await getMedia({ video })).getTracks().forEach((t) => stream.addTrack(t));
      } catch (e) {
        videoError = e;
      }
      try {
        (await getMedia({ audio })).getTracks().forEach((t) => stream.addTrack(t));
      } catch (e) {
        audioError = e;
      }
    }
    for (const track of stream.getTracks()) {
      track.enabled = track.kind === 'video' ? !cameraOff : !micMuted;
      localStream.addTrack(track);
    }
    showLocalPreview();
    await listDevices();

    if (videoError || audioError) {
      const denied = [videoError, audioError].some((e) => e && e.name === 'NotAllowedError');
      let text;
      if (videoError && audioError) {
        const reason = denied
          ? 'Camera and microphone access was blocked'
          : `Camera and microphone could not be opened: ${describeMediaError(videoError, 'Camera')}`;
        text =
          `${reason}. You can still join: you will see and hear the other person, but they will not see or hear you. ` +
          'To fix it, allow camera and microphone for this site in the browser (the icon in the address bar) and reload.';
      } else if (videoError) {
        text = `${capitalise(describeMediaError(videoError, 'Camera'))}. Joining with your microphone only.`;
      } else {
        text = `${capitalise(describeMediaError(audioError, 'Microphone'))}. Joining with your camera only.`;
      }
      fail(denied ? 'permission-denied' : 'media-unavailable', text);
      showNotice(text);
    } else {
      showNotice('');
    }
  }

  function stopMedia() {
    for (const track of localStream.getTracks()) {
      track.stop();
      localStream.removeTrack(track);
    }
    showLocalPreview();
  }

  function showLocalPreview() {
    const video = localTrack('video');
    ui.localBox.hidden = !video;
    ui.localOff.hidden = !cameraOff;
    ui.localVideo.hidden = cameraOff;
    if (video && ui.localVideo.srcObject !== localStream) ui.localVideo.srcObject = localStream;
    ui.micButton.disabled = !localTrack('audio');
    ui.cameraButton.disabled = !video;
  }

  async function listDevices() {
    if (!navigator.mediaDevices || !navigator.mediaDevices.enumerateDevices) return;
    let devices = [];
    try {
      devices = await navigator.mediaDevices.enumerateDevices();
    } catch (e) {
      log('enumerateDevices failed', { message: e.message });
    }
    const fill = (select, kind, track) => {
      const current = track ? track.getSettings().deviceId : select.value;
      select.replaceChildren();
      const list = devices.filter((d) => d.kind === kind && d.deviceId);
      list.forEach((d, i) => {
        const option = document.createElement('option');
        option.value = d.deviceId;
        option.textContent = d.label || `${kind === 'videoinput' ? 'Camera' : 'Microphone'} ${i + 1}`;
        option.selected = d.deviceId === current;
        select.append(option);
      });
      if (list.length === 0) {
        const option = document.createElement('option');
        option.textContent = kind === 'videoinput' ? 'No camera' : 'No microphone';
        option.value = '';
        select.append(option);
      }
      select.disabled = list.length === 0;
    };
    fill(ui.cameraSelect, 'videoinput', localTrack('video'));
    fill(ui.micSelect, 'audioinput', localTrack('audio'));
  }

  async function switchDevice(kind, deviceId) {
    if (!deviceId) return;
    const old = localTrack(kind);
    if (old && old.getSettings().deviceId === deviceId) return;
    const constraints =
      kind === 'video'
        ? { video: { ...VIDEO_CONSTRAINTS, deviceId: { exact: deviceId } } }
        : { audio: { ...AUDIO_CONSTRAINTS, deviceId: { exact: deviceId } } };
    // Some cameras cannot be opened twice: release the old one first.
    if (old && kind === 'video') old.stop();
    let track;
    try {
      [track] = (await getMedia(constraints)).getTracks();
    } catch (e) {
      showNotice(`${capitalise(describeMediaError(e, kind === 'video' ? 'Camera' : 'Microphone'))}.`);
      return;
    }
    track.enabled = kind === 'video' ? !cameraOff : !micMuted;
    if (old) {
      old.stop();
      localStream.removeTrack(old);
    }
    localStream.addTrack(track);
    showLocalPreview();
    if (call) call.useTrack(kind, track);
    log('device switched', { kind, label: track.label });
  }

  // ---------------------------------------------------------------- signalling connection

  let ws = null;
  let wsAttempts = 0;
  let retryTimer = null;
  /** Whether the user wants to be in `config.room` (joined, or about to). */
  let wantRoom = false;

  function serverUrl() {
    return `${location.protocol === 'https:' ? 'wss:' : 'ws:'}//${location.host}/`;
  }

  function send(message) {
    if (!ws || ws.readyState !== WebSocket.OPEN) return false;
    ws.send(JSON.stringify(message));
    return true;
  }

  function connect() {
    clearTimeout(retryTimer);
    const url = serverUrl();
    let opened = false;
    let sock;
    try {
      sock = new WebSocket(url);
    } catch (e) {
      fail('server-unreachable', `cannot open ${url}: ${e.message}`);
      setState('offline', 'Cannot reach the signalling server.', `${url} — open this page from the duet server.`);
      return;
    }
    ws = sock;
    if (hook.state !== 'offline') setState('signalling', 'Connecting to the server…', url);
    sock.onopen = () => {
      opened = true;
      wsAttempts = 0;
      log('server connected', { url });
      if (wantRoom) sendJoin();
    };
    sock.onmessage = (event) => {
      let msg;
      try {
        msg = JSON.parse(event.data);
      } catch {
        log('unparsable server message');
        return;
      }
      if (msg && typeof msg === 'object') onServerMessage(msg);
    };
    sock.onclose = (event) => {
      if (ws !== sock) return;
      ws = null;
      endCall();
      if (!wantRoom) return;
      const delayMs = Math.min(1000 * 2 ** wsAttempts, 8000);
      wsAttempts += 1;
      const what = opened
        ? 'Lost the connection to the signalling server.'
        : 'Cannot reach the signalling server.';
      fail('server-unreachable', `${what} (${url}, close code ${event.code})`);
      setState('offline', what, `Retrying in ${Math.round(delayMs / 1000)} s… (${url})`);
      retryTimer = setTimeout(connect, delayMs);
    };
  }

  function sendJoin() {
    const message = { type: 'join', room: config.room };
    if (config.token) message.token = config.token;
    if (!send(message)) return;
    hook.timings = { joinSent: epochMs() };
    log('join sent', { room: config.room });
    setState('waiting', waitingText(), `Send this link to the person you want to call: ${shareLink()}`);
  }

  function onServerMessage(msg) {
    switch (msg.type) {
      case 'ready':
        if (msg.room !== undefined && msg.room !== config.room) return;
        hook.offerer = typeof msg.offerer === 'boolean' ? msg.offerer : null;
        // Timings of this pairing only (the page may have had earlier peers in this room).
        hook.timings = { joinSent: hook.timings.joinSent, ready: epochMs() };
        log('ready', { offerer: hook.offerer });
        startCall(config.ignoreOfferer ? null : hook.offerer);
        break;
      case 'offer':
      case 'answer':
      case 'candidate':
        if (msg.room !== undefined && msg.room !== config.room) return;
        if (!call) {
          if (msg.type !== 'offer') return;
          startCall(false);
        }
        call.onSignal(msg);
        break;
      case 'peer-left':
        if (msg.room !== undefined && msg.room !== config.room) return;
        log('peer left');
        endCall();
        if (wantRoom) setState('waiting', waitingText(), 'The other person left the call.');
        break;
      case 'error':
        onServerError(msg);
        break;
      default:
        // Unknown types are ignored (protocol rule: servers may add some).
        break;
    }
  }

  function onServerError(msg) {
    const code = String(msg.code || 'unknown');
    const text = String(msg.message || code);
    fail(code, text);
    if (NON_FATAL_ERRORS.has(code)) return;
    // Refused: not in the room, so release the camera until the person tries again.
    wantRoom = false;
    endCall();
    stopMedia();
    if (code === 'room-full') {
      setState(
        'full',
        `Room ${config.room} is full`,
        'Two people are already in this call. Try again later, or pick another room name.',
      );
    } else if (code === 'invalid-room') {
      setState('refused', `“${config.room}” cannot be used as a room name`, text);
    } else {
      setState('refused', 'The server refused to let you join', `${text} (${code})`);
    }
    ui.roomInput.value = config.room;
  }

  // ---------------------------------------------------------------- the call

  let call = null;
  let remoteStream = null;

  function startCall(offerer) {
    endCall();
    remoteStream = new MediaStream();
    ui.remoteVideo.srcObject = remoteStream;
    call = new Call(offerer);
    hook.peerConnections += 1;
    setState('connecting', 'Connecting…', 'Someone joined: setting up the call.');
  }

  function endCall() {
    if (call) {
      call.close();
      call = null;
    }
    if (remoteStream) remoteStream.getTracks().forEach((t) => remoteStream.removeTrack(t));
    remoteStream = null;
    ui.remoteVideo.srcObject = null;
    ui.soundButton.hidden = true;
    ui.statsLine.textContent = '';
    lastSample = null;
  }

  function playRemote() {
    const video = ui.remoteVideo;
    video.muted = false;
    video.play().catch((e) => {
      if (e.name !== 'NotAllowedError') return;
      // Autoplay with sound was refused: play muted and offer a button.
      video.muted = true;
      video.play().catch(() => {});
      ui.soundButton.hidden = false;
    });
  }

  const isLoopbackAddress = (a) => /^127\./.test(a) || a === '::1' || a === '0:0:0:0:0:0:0:1';

  function candidateAddress(candidate) {
    const parts = String(candidate || '').replace(/^a=/, '').split(/\s+/);
    return parts.length > 5 ? parts[4].replace(/^\[|\]$/g, '') : '';
  }

  function rankCodec(kind, codec) {
    const mime = codec.mimeType.toLowerCase();
    if (kind === 'audio') return mime === 'audio/opus' ? 0 : 1;
    if (mime !== 'video/h264') {
      return ['video/rtx', 'video/red', 'video/ulpfec', 'video/flexfec-03'].includes(mime) ? 4 : 3;
    }
    const fmtp = Object.fromEntries(
      String(codec.sdpFmtpLine || '')
        .split(';')
        .map((kv) => kv.trim().split('='))
        .filter((kv) => kv.length === 2)
        .map(([k, v]) => [k.toLowerCase(), v.toLowerCase()]),
    );
    if (fmtp['packetization-mode'] !== '1') return 2;
    return fmtp['profile-level-id'] === '42e01f' ? 0 : 1;
  }

  /** Codecs of `kind` ordered H.264 42e01f (packetization-mode 1) first, or Opus first. */
  function preferredCodecs(kind) {
    const caps = window.RTCRtpReceiver && RTCRtpReceiver.getCapabilities && RTCRtpReceiver.getCapabilities(kind);
    if (!caps) return null;
    return caps.codecs
      // No RTX/RED/FEC entries: duet's native peer negotiates none of them, and a browser offer
      // carrying an RTX SSRC group leaves webrtc-rs waiting on the wrong stream.
      .filter((codec) => !/\/(rtx|red|ulpfec|flexfec-03)$/i.test(codec.mimeType))
      .map((codec, i) => ({ codec, i, rank: rankCodec(kind, codec) }))
      .sort((a, b) => a.rank - b.rank || a.i - b.i)
      .map((c) => c.codec);
  }

  class Call {
    /** `offerer`: true (offer, impolite), false (answer, polite) or null (seed: both offer). */
    constructor(offerer) {
      this.offerer = offerer;
      this.polite = offerer === null ? null : !offerer;
      this.closed = false;
      this.ignoringOffer = false;
      this.pendingCandidates = [];
      this.chain = Promise.resolve();
      this.firstFramePoll = null;
      const pc = new RTCPeerConnection({ iceServers: config.iceServers });
      this.pc = pc;

      pc.onicecandidate = (event) => {
        if (this.closed) return;
        const c = event.candidate;
        // Firefox ends each m-line with an empty candidate; `null` below ends them all.
        if (c && !c.candidate) return;
        if (c && config.loopbackOnly && !isLoopbackAddress(candidateAddress(c.candidate))) {
          log('local candidate not sent (not loopback)', { address: candidateAddress(c.candidate) });
          return;
        }
        log(c ? 'local candidate sent' : 'end of local candidates', c ? { address: candidateAddress(c.candidate) } : undefined);
        send({ type: 'candidate', room: config.room, candidate: c ? c.toJSON() : null });
      };
      pc.ontrack = (event) => {
        if (this.closed || !remoteStream) return;
        log('remote track', { kind: event.track.kind });
        if (!remoteStream.getTracks().includes(event.track)) remoteStream.addTrack(event.track);
        ui.remoteVideo.srcObject = remoteStream;
        playRemote();
      };
      pc.onconnectionstatechange = () => this.onConnectionState();

      for (const kind of ['audio', 'video']) {
        const track = localTrack(kind);
        if (track) pc.addTrack(track, localStream);
        else if (offerer !== false) pc.addTransceiver(kind, { direction: 'recvonly' });
      }
      this.watchFirstFrame();
      if (offerer !== false) this.enqueue(() => this.makeOffer());
    }

    /** Runs `step` after every earlier signalling step: descriptions never interleave. */
    enqueue(step) {
      this.chain = this.chain
        .then(() => (this.closed ? undefined : step()))
        .catch((e) => {
          if (!this.closed) log('negotiation step failed', { name: e.name, message: e.message });
        });
      return this.chain;
    }

    onSignal(msg) {
      this.enqueue(() => {
        if (msg.type === 'offer') return this.onOffer(msg.offer);
        if (msg.type === 'answer') return this.onAnswer(msg.answer);
        return this.onCandidate(msg.candidate === undefined ? null : msg.candidate);
      });
    }

    preferCodecs() {
      for (const t of this.pc.getTransceivers()) {
        if (typeof t.setCodecPreferences !== 'function' || t.currentDirection === 'stopped') continue;
        const codecs = preferredCodecs(t.receiver.track.kind);
        if (!codecs) continue;
        try {
          t.setCodecPreferences(codecs);
        } catch (e) {
          log('setCodecPreferences failed', { message: e.message });
        }
      }
    }

    async makeOffer(options = {}) {
      const pc = this.pc;
      if (pc.signalingState !== 'stable') return;
      this.preferCodecs();
      const offer = await pc.createOffer(options);
      if (this.closed || pc.signalingState !== 'stable') return;
      await pc.setLocalDescription(offer);
      if (this.closed) return;
      log('offer sent', options.iceRestart ? { iceRestart: true } : undefined);
      send({ type: 'offer', room: config.room, offer: { type: 'offer', sdp: pc.localDescription.sdp } });
    }

    async onOffer(desc) {
      if (!desc || typeof desc.sdp !== 'string') return;
      const pc = this.pc;
      if (pc.signalingState !== 'stable') {
        let polite = this.polite;
        if (polite === null) {
          const mine = sessionId(pc.localDescription && pc.localDescription.sdp);
          const theirs = sessionId(desc.sdp);
          polite = mine === null || theirs === null ? true : mine >= theirs;
        }
        if (!polite) {
          this.ignoringOffer = true;
          log('offer collision: ignoring the remote offer (impolite)');
          return;
        }
        log('offer collision: rolling back our offer (polite)');
        await pc.setLocalDescription({ type: 'rollback' });
      }
      this.ignoringOffer = false;
      await pc.setRemoteDescription({ type: 'offer', sdp: desc.sdp });
      await this.flushCandidates();
      // A rollback may have left a local track unattached: attach what we have.
      for (const kind of ['audio', 'video']) {
        const track = localTrack(kind);
        if (track && !pc.getSenders().some((s) => s.track === track)) this.useTrack(kind, track, false);
      }
      this.preferCodecs();
      await pc.setLocalDescription(await pc.createAnswer());
      if (this.closed) return;
      log('answer sent');
      send({ type: 'answer', room: config.room, answer: { type: 'answer', sdp: pc.localDescription.sdp } });
    }

    async onAnswer(desc) {
      if (!desc || typeof desc.sdp !== 'string') return;
      if (this.pc.signalingState !== 'have-local-offer') {
        log('unexpected answer ignored', { signalingState: this.pc.signalingState });
        return;
      }
      this.ignoringOffer = false;
      await this.pc.setRemoteDescription({ type: 'answer', sdp: desc.sdp });
      await this.flushCandidates();
    }

    async onCandidate(candidate) {
      if (this.ignoringOffer) return;
      if (candidate && config.loopbackOnly && !isLoopbackAddress(candidateAddress(candidate.candidate))) {
        log('remote candidate dropped (not loopback)', { address: candidateAddress(candidate.candidate) });
        return;
      }
      if (!this.pc.remoteDescription) {
        this.pendingCandidates.push(candidate);
        return;
      }
      await this.addCandidate(candidate);
    }

    async flushCandidates() {
      const pending = this.pendingCandidates;
      this.pendingCandidates = [];
      for (const c of pending) await this.addCandidate(c);
    }

    async addCandidate(candidate) {
      try {
        // No argument = end of candidates.
        if (candidate) await this.pc.addIceCandidate(candidate);
        else await this.pc.addIceCandidate();
      } catch (e) {
        if (!this.ignoringOffer) log('remote candidate rejected', { message: e.message });
      }
    }

    /** Sends `track` as this call's `kind`; renegotiates if nothing of that kind was sent yet. */
    useTrack(kind, track, renegotiate = true) {
      const pc = this.pc;
      const transceiver = pc
        .getTransceivers()
        .find((t) => t.receiver.track.kind === kind && t.currentDirection !== 'stopped');
      if (!transceiver) {
        pc.addTrack(track, localStream);
      } else {
        transceiver.sender.replaceTrack(track).catch((e) => log('replaceTrack failed', { message: e.message }));
        if (transceiver.direction === 'sendrecv' || transceiver.direction === 'sendonly') return;
        transceiver.direction = 'sendrecv';
        transceiver.sender.setStreams && transceiver.sender.setStreams(localStream);
      }
      if (renegotiate) this.enqueue(() => this.makeOffer());
    }

    onConnectionState() {
      if (this.closed) return;
      const state = this.pc.connectionState;
      log('connection state', { state });
      if (state === 'connected') {
        hook.timings.connected = hook.timings.connected || epochMs();
        setState('connected', 'Connected', '');
      } else if (state === 'disconnected') {
        setState('connecting', 'Connection interrupted', 'Trying to reconnect…');
      } else if (state === 'failed') {
        fail('ice-failed', 'no network path to the other person');
        setState(
          'failed',
          'Could not connect to the other person',
          'The network between you blocks the call. Retrying… (a STUN server can help: add ?stun=host:port)',
        );
        if (this.polite !== true) this.enqueue(() => this.makeOffer({ iceRestart: true }));
      }
    }

    /** Records when the first remote video frame was decoded (getStats every 20 ms). */
    watchFirstFrame() {
      const started = performance.now();
      const poll = async () => {
        if (this.closed || hook.timings.firstFrameDecoded) return;
        try {
          const s = await this.readStats();
          if (s.video && s.video.framesDecoded > 0) {
            hook.timings.firstFrameDecoded = epochMs();
            log('first remote frame decoded');
            return;
          }
        } catch {
          /* closed meanwhile */
        }
        if (performance.now() - started < 60000) this.firstFramePoll = setTimeout(poll, 20);
      };
      this.firstFramePoll = setTimeout(poll, 20);
      const video = ui.remoteVideo;
      if (typeof video.requestVideoFrameCallback === 'function') {
        video.requestVideoFrameCallback(() => {
          if (!this.closed && !hook.timings.firstFramePresented) hook.timings.firstFramePresented = epochMs();
        });
      }
    }

    /** A plain object with what tests and the stats line need. */
    async readStats() {
      const report = await this.pc.getStats();
      const byId = new Map();
      report.forEach((s) => byId.set(s.id, s));
      const codec = (s) => {
        const c = s && s.codecId && byId.get(s.codecId);
        return c ? { mimeType: c.mimeType, sdpFmtpLine: c.sdpFmtpLine || '' } : null;
      };
      const out = { timestamp: Date.now(), video: null, audio: null, sentVideo: null, sentAudio: null };
      let pairId = null;
      report.forEach((s) => {
        if (s.type === 'inbound-rtp' && s.kind === 'video') {
          out.video = {
            framesDecoded: s.framesDecoded || 0,
            framesReceived: s.framesReceived || 0,
            frameWidth: s.frameWidth || 0,
            frameHeight: s.frameHeight || 0,
            framesPerSecond: s.framesPerSecond || 0,
            bytesReceived: s.bytesReceived || 0,
            packetsReceived: s.packetsReceived || 0,
            decoderImplementation: s.decoderImplementation || '',
            codec: codec(s),
          };
        } else if (s.type === 'inbound-rtp' && s.kind === 'audio') {
          out.audio = {
            packetsReceived: s.packetsReceived || 0,
            bytesReceived: s.bytesReceived || 0,
            codec: codec(s),
          };
        } else if (s.type === 'outbound-rtp' && s.kind === 'video') {
          out.sentVideo = {
            framesEncoded: s.framesEncoded || 0,
            bytesSent: s.bytesSent || 0,
            frameWidth: s.frameWidth || 0,
            frameHeight: s.frameHeight || 0,
            encoderImplementation: s.encoderImplementation || '',
            codec: codec(s),
          };
        } else if (s.type === 'outbound-rtp' && s.kind === 'audio') {
          out.sentAudio = { packetsSent: s.packetsSent || 0, bytesSent: s.bytesSent || 0, codec: codec(s) };
        } else if (s.type === 'transport' && s.selectedCandidatePairId) {
          pairId = s.selectedCandidatePairId;
        } else if (s.type === 'candidate-pair' && s.selected && !pairId) {
          pairId = s.id; // Firefox
        }
      });
      const pair = pairId && byId.get(pairId);
      out.rttMs = pair && pair.currentRoundTripTime !== undefined ? pair.currentRoundTripTime * 1000 : null;
      const local = pair && byId.get(pair.localCandidateId);
      const remote = pair && byId.get(pair.remoteCandidateId);
      out.localCandidate = local ? { address: local.address || local.ip, type: local.candidateType } : null;
      out.remoteCandidate = remote ? { address: remote.address || remote.ip, type: remote.candidateType } : null;
      out.connectionState = this.pc.connectionState;
      return out;
    }

    close() {
      this.closed = true;
      clearTimeout(this.firstFramePoll);
      this.pc.onicecandidate = null;
      this.pc.ontrack = null;
      this.pc.onconnectionstatechange = null;
      this.pc.close();
    }
  }

  // ---------------------------------------------------------------- the stats line

  let lastSample = null;

  const formatRate = (bps) => (bps >= 1e6 ? `${(bps / 1e6).toFixed(1)} Mb/s` : `${Math.round(bps / 1e3)} kb/s`);

  async function updateStatsLine() {
    if (!call) return;
    let s;
    try {
      s = await call.readStats();
    } catch {
      return;
    }
    if (!call) return;
    const received = ((s.video && s.video.bytesReceived) || 0) + ((s.audio && s.audio.bytesReceived) || 0);
    const sent = ((s.sentVideo && s.sentVideo.bytesSent) || 0) + ((s.sentAudio && s.sentAudio.bytesSent) || 0);
    const parts = [];
    if (s.video && s.video.frameWidth) {
      const codecName = s.video.codec ? s.video.codec.mimeType.replace(/^video\//, '') : '';
      parts.push(`${s.video.frameWidth}×${s.video.frameHeight} ${Math.round(s.video.framesPerSecond)} fps ${codecName}`.trim());
    }
    if (lastSample) {
      const seconds = (s.timestamp - lastSample.timestamp) / 1000;
      if (seconds > 0) {
        parts.push(`↓ ${formatRate(((received - lastSample.received) * 8) / seconds)}`);
        parts.push(`↑ ${formatRate(((sent - lastSample.sent) * 8) / seconds)}`);
      }
    }
    if (s.rttMs !== null) parts.push(`RTT ${Math.round(s.rttMs)} ms`);
    lastSample = { timestamp: s.timestamp, received, sent };
    ui.statsLine.textContent = parts.join(' · ');
  }

  setInterval(updateStatsLine, 1000);

  // ---------------------------------------------------------------- user actions

  async function join(room) {
    const name = String(room === undefined ? config.room : room).trim();
    if (!name) {
      setState('idle', 'Join a call', 'Pick a room name and share it with the other person.');
      return;
    }
    config.room = name;
    hook.room = name;
    ui.roomLabel.textContent = name;
    document.title = `${name} · duet`;
    wantRoom = true;
    if (localStream.getTracks().length === 0) {
      setState('media', 'Starting your camera and microphone…');
      await startMedia();
    }
    if (!wantRoom) return; // hung up meanwhile
    if (ws && ws.readyState === WebSocket.OPEN) sendJoin();
    else if (!ws || ws.readyState !== WebSocket.CONNECTING) connect();
    else setState('signalling', 'Connecting to the server…', serverUrl());
  }

  function hangup() {
    if (!wantRoom) return;
    wantRoom = false;
    send({ type: 'leave', room: config.room });
    log('left');
    endCall();
    stopMedia();
    clearTimeout(retryTimer);
    setState('left', 'You left the call', `Room ${config.room}`);
  }

  ui.joinForm.addEventListener('submit', (event) => {
    event.preventDefault();
    const room = ui.roomInput.value.trim();
    if (!room) return;
    const url = new URL(location.href);
    url.searchParams.set('room', room);
    history.replaceState(null, '', url);
    join(room);
  });
  ui.retryButton.addEventListener('click', () => join());
  ui.rejoinButton.addEventListener('click', () => join());
  ui.hangupButton.addEventListener('click', hangup);
  ui.soundButton.addEventListener('click', () => {
    ui.soundButton.hidden = true;
    ui.remoteVideo.muted = false;
    ui.remoteVideo.play().catch(() => {});
  });
  ui.micButton.addEventListener('click', () => {
    micMuted = !micMuted;
    localStream.getAudioTracks().forEach((t) => (t.enabled = !micMuted));
    ui.micButton.setAttribute('aria-pressed', String(micMuted));
    ui.micButton.querySelector('.label').textContent = micMuted ? 'Unmute' : 'Mute';
    ui.micButton.title = micMuted ? 'Unmute your microphone' : 'Mute your microphone';
  });
  ui.cameraButton.addEventListener('click', () => {
    cameraOff = !cameraOff;
    localStream.getVideoTracks().forEach((t) => (t.enabled = !cameraOff));
    ui.cameraButton.setAttribute('aria-pressed', String(cameraOff));
    ui.cameraButton.querySelector('.label').textContent = cameraOff ? 'Camera on' : 'Camera off';
    ui.cameraButton.title = cameraOff ? 'Turn your camera on' : 'Turn your camera off';
    showLocalPreview();
  });
  ui.cameraSelect.addEventListener('change', () => switchDevice('video', ui.cameraSelect.value));
  ui.micSelect.addEventListener('change', () => switchDevice('audio', ui.micSelect.value));
  if (navigator.mediaDevices && navigator.mediaDevices.addEventListener) {
    navigator.mediaDevices.addEventListener('devicechange', listDevices);
  }
  window.addEventListener('pagehide', () => {
    if (ws) ws.close(1000, 'page closed');
  });

  if (location.protocol !== 'http:' && location.protocol !== 'https:') {
    fail('server-unreachable', 'page not served over http(s)');
    setState('offline', 'Open this page from the duet server', 'For example http://127.0.0.1:8080/?room=kitchen');
  } else if (config.room) {
    ui.roomInput.value = config.room;
    join(config.room);
  } else {
    setState('idle', 'Join a call', 'Pick a room name and share it with the other person.');
    ui.roomInput.focus();
  }
})();
