// duet's browser client: one page, no framework, no build step, nothing fetched at run time.
//
// It speaks the `signal` protocol (docs/protocol.md) over a WebSocket on the origin that served
// it. The call's rules — who offers, glare, queued and malformed candidates, which server errors
// end the call, ICE restart, the connect timeout — are not here: they are negotiation.js's
// `CallCore`, the same state machine as the native app's (crates/call/src/core.rs), checked
// against the same scenario table. This file is the shell around it: it carries out the core's
// outputs on RTCPeerConnection, the WebSocket, timers and the page, and feeds back what
// happened. Media, devices, the stats line and reconnecting to the server are the page's own.
//
// URL parameters: `room` (join at once), `token` (sent with `join`), `stun` (comma-separated
// extra STUN/TURN URLs; the server's own come with `ready`), `loopback=1` (only 127.0.0.1/::1 ICE candidates: tests on
// machines whose other interfaces must not be used), `negotiation=seed` (ignore the `offerer`
// flag, as with the seed server: tests the glare path).
//
// `window.duet` is a small read-only test hook: state, last error, timings and `stats()`.
'use strict';

/* global DuetNegotiation */

(() => {
  const $ = (id) => document.getElementById(id);
  const params = new URLSearchParams(location.search);

  const config = {
    room: (params.get('room') || '').trim(),
    token: params.get('token'),
    // Extra servers besides the ones signal hands out with `ready`: `stun:`, `stuns:`,
    // `turn:` or `turns:` URLs as given (a bare host means STUN).
    iceServers: (params.get('stun') || '')
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean)
      .map((s) => ({ urls: /^(stuns?|turns?):/.test(s) ? s : `stun:${s}` })),
    loopbackOnly: params.get('loopback') === '1',
    // This page's seat key on the server: if the connection drops mid-call, the page joins
    // again with it and takes its seat back (the other side is not told it left).
    session: Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, '0')).join(''),
    ignoreOfferer: params.get('negotiation') === 'seed',
    // `?codec=vp8` (or h264): send and receive only that video codec, for trying a codec.
    videoCodec: (params.get('codec') || '').trim().toLowerCase(),
  };

  const VIDEO_CONSTRAINTS = {
    width: { ideal: 1280 },
    height: { ideal: 720 },
    frameRate: { ideal: 30 },
  };
  const AUDIO_CONSTRAINTS = { echoCancellation: true, noiseSuppression: true, autoGainControl: true };

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
    verify: $('verify'),
    badge: $('badge'),
    statsLine: $('stats-line'),
    notice: $('notice'),
    controls: $('controls'),
    micButton: $('mic-button'),
    cameraButton: $('camera-button'),
    shareButton: $('share-button'),
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
    /** The call's verification code (`"123 456"`), once both descriptions are set. */
    verification: null,
    /** Whether the screen is shared instead of the camera. */
    sharing: false,
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
    reconnecting: 'Reconnecting…',
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
    ui.rejoinButton.hidden = !(state === 'left' || state === 'failed');
    const inRoom = ['waiting', 'connecting', 'connected', 'reconnecting', 'media', 'signalling', 'offline'];
    ui.controls.hidden = !(inRoom.includes(state) && wantRoom);
    document.body.dataset.state = state;
    log('state', { state, message });
  }

  /** The media notice (what the camera and microphone can do); stays up. */
  let mediaNotice = '';
  let warningTimer = null;

  function renderNotice(text) {
    hook.notice = text;
    ui.notice.textContent = text;
    ui.notice.hidden = !text;
  }

  function showNotice(text) {
    mediaNotice = text;
    if (!warningTimer) renderNotice(text);
  }

  /** A problem that does not end the call: shown for a while, then the media notice again. */
  function showWarning(text) {
    log('warning', { message: text });
    clearTimeout(warningTimer);
    renderNotice(`${capitalise(text)}.`);
    warningTimer = setTimeout(() => {
      warningTimer = null;
      renderNotice(mediaNotice);
    }, 8000);
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
  /** While the screen is shared: the camera track to go back to (kept open), or null. */
  let cameraWhileSharing = null;

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
    if (cameraWhileSharing !== null) {
      if (cameraWhileSharing !== 'none') cameraWhileSharing.stop();
      cameraWhileSharing = null;
      setSharing(false);
    }
    for (const track of localStream.getTracks()) {
      track.stop();
      localStream.removeTrack(track);
    }
    showLocalPreview();
  }

  function showLocalPreview() {
    const video = localTrack('video');
    ui.localBox.hidden = !video;
    // A mirror for the camera; a shared screen is shown the way the other person sees it.
    ui.localVideo.classList.toggle('screen', cameraWhileSharing !== null);
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
    if (kind === 'video' && cameraWhileSharing !== null) stopScreenShare();
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
    if (call && call.useTrack(kind, track) === 'later') {
      showWarning(`the other person gets this ${kind === 'video' ? 'camera' : 'microphone'} from your next call`);
    }
    log('device switched', { kind, label: track.label });
  }

  /** Puts `track` in the call in place of the current video track (same sender, no renegotiation). */
  function sendVideo(track) {
    const old = localTrack('video');
    if (old) localStream.removeTrack(old);
    localStream.addTrack(track);
    showLocalPreview();
    if (call && call.useTrack('video', track) === 'later') {
      showWarning('the other person gets this picture from your next call');
    }
  }

  /** Shares a screen or window (the browser asks which), or goes back to the camera. */
  async function toggleScreenShare() {
    if (cameraWhileSharing !== null) {
      stopScreenShare();
      return;
    }
    let screen;
    try {
      // Screens change rarely and each picture is large: fewer frames, sharper text.
      const stream = await navigator.mediaDevices.getDisplayMedia({
        video: { frameRate: { ideal: 10, max: 15 }, width: { max: 1920 }, height: { max: 1080 } },
        audio: false,
      });
      [screen] = stream.getVideoTracks();
    } catch (e) {
      if (e && e.name !== 'NotAllowedError') showNotice(`The screen could not be shared (${e.message || e}).`);
      log('getDisplayMedia failed', { name: e && e.name, message: e && e.message });
      return;
    }
    if ('contentHint' in screen) screen.contentHint = 'detail';
    cameraWhileSharing = localTrack('video') || 'none';
    // The browser's own "Stop sharing" ends the track: go back to the camera then too.
    screen.addEventListener('ended', () => {
      if (cameraWhileSharing !== null && localTrack('video') === screen) stopScreenShare();
    });
    sendVideo(screen);
    setSharing(true);
    log('screen shared', { label: screen.label });
  }

  function stopScreenShare() {
    const screen = localTrack('video');
    const camera = cameraWhileSharing;
    cameraWhileSharing = null;
    if (camera && camera !== 'none') {
      camera.enabled = !cameraOff;
      sendVideo(camera);
    } else if (screen) {
      localStream.removeTrack(screen);
      if (call) call.useTrack('video', null);
      showLocalPreview();
    }
    if (screen) screen.stop();
    setSharing(false);
    log('screen sharing stopped');
  }

  function setSharing(on) {
    hook.sharing = on;
    ui.shareButton.setAttribute('aria-pressed', String(on));
    ui.shareButton.querySelector('.label').textContent = on ? 'Stop sharing' : 'Share screen';
    ui.shareButton.title = on ? 'Go back to your camera' : 'Show your screen instead of your camera';
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

  /**
   * Opens the WebSocket. With `resume` (a Session in a call whose connection dropped), joins
   * again with the same session id and tells that session the connection is back; otherwise a
   * fresh join starts a fresh session.
   */
  function connect(resume) {
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
      if (resume) {
        if (resume === session && !resume.dead && sendJoinMessage()) {
          log('rejoined with our session; the call goes on');
          resume.feed('signal-restored');
        }
        return;
      }
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
      if (session && !session.dead && session.core.hasPeer()) {
        // Mid-call: media does not need the server. The core says when to try again
        // ('reconnect-signal'), and ends the call only if it stays away too long.
        log('server connection lost mid-call', { code: event.code });
        session.feed({ 'signal-lost': { reason: `close code ${event.code}` } });
        return;
      }
      if (session) session.finish({ 'signal-lost': { reason: `close code ${event.code}` } });
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

  /** Sends `join` (with the token and our session id); false when the socket is not open. */
  function sendJoinMessage() {
    const message = { type: 'join', room: config.room, session: config.session };
    if (config.token) message.token = config.token;
    return send(message);
  }

  function sendJoin() {
    if (!sendJoinMessage()) return;
    hook.timings = { joinSent: epochMs() };
    log('join sent', { room: config.room });
    if (session) session.dispose();
    session = new Session();
    session.feed('joined');
  }

  function onServerMessage(msg) {
    if (msg.type !== 'error' && msg.room !== undefined && msg.room !== config.room) return;
    if (msg.type === 'ready') {
      lastReady = { at: epochMs(), offerer: typeof msg.offerer === 'boolean' ? msg.offerer : null };
      log('ready', { offerer: lastReady.offerer });
      if (config.ignoreOfferer) {
        msg = { ...msg };
        delete msg.offerer;
      }
    } else if (msg.type === 'error') {
      fail(String(msg.code || 'unknown'), String(msg.message || msg.code));
    }
    // Everything else, including types this page does not know, is the core's to judge.
    if (session) session.feed({ signal: msg });
  }

  // ---------------------------------------------------------------- the rules' shell
  //
  // One `Session` per `join`: a CallCore (negotiation.js) and the shell that carries out its
  // outputs on RTCPeerConnection, the WebSocket, the page and setTimeout. Inputs are handled one
  // at a time: each one's outputs are carried out in order (awaiting the WebRTC operations) and
  // their results fed back at once, before the next input is looked at — as the native session
  // does (crates/call/src/session.rs) — so the core's view of the signalling state is never
  // behind the peer connection's.

  let session = null;
  /** The last `ready`: when, and the server's `offerer` flag (kept for the hook in seed mode). */
  let lastReady = null;
  /** The core said `peer-left`: the next "waiting" says so. */
  let peerJustLeft = false;

  class Session {
    constructor() {
      this.core = new DuetNegotiation.CallCore({
        room: config.room,
        loopback_only: config.loopbackOnly,
        has_stun: config.iceServers.some((s) => /^stuns?:/.test(s.urls)),
        has_turn: config.iceServers.some((s) => /^turns?:/.test(s.urls)),
      });
      this.queue = [];
      this.busy = false;
      this.dead = false;
      this.timers = new Map();
      /** The input whose outputs are being carried out (what a terminal state came from). */
      this.cause = null;
    }

    /** Queues an input; it is handled after every earlier one and its results. */
    feed(input) {
      if (this.dead) return;
      this.queue.push(input);
      if (!this.busy) this.pump();
    }

    async pump() {
      this.busy = true;
      try {
        while (this.queue.length && !this.dead) await this.handle(this.queue.shift());
      } catch (e) {
        log('shell error', { message: e.message });
      } finally {
        this.busy = false;
      }
    }

    async handle(input) {
      this.cause = input;
      this.take(input);
      for (let out; !this.dead && (out = this.core.poll()) !== undefined; ) {
        const result = await this.execute(out);
        if (result !== undefined && !this.dead) this.take(result);
      }
    }

    /** Gives the core one input (and logs an offer collision it settled by ignoring). */
    take(input) {
      const ignored = this.core.counters().glare_ignored;
      this.core.handle(input);
      if (this.core.counters().glare_ignored > ignored) log('offer collision: ignoring the remote offer (impolite)');
    }

    /**
     * Handles a final input (hang-up, the server connection lost) at once, ahead of anything
     * queued: what it produces needs no WebRTC operation (send, close the peer, state).
     */
    finish(input) {
      if (this.dead) return;
      this.queue = [];
      this.cause = input;
      this.core.handle(input);
      for (let out; (out = this.core.poll()) !== undefined; ) {
        const kind = typeof out === 'string' ? out : Object.keys(out)[0];
        if (['send', 'close-peer', 'state', 'warning', 'cancel-timer'].includes(kind)) this.execute(out);
      }
      this.dispose();
    }

    /** Stops everything this session started. */
    dispose() {
      this.dead = true;
      for (const timer of this.timers.values()) clearTimeout(timer);
      this.timers.clear();
      if (session === this) session = null;
    }

    /** Carries out one output; returns the input that came of it, if the core needs one. */
    async execute(out) {
      const [kind, value] = typeof out === 'string' ? [out, undefined] : Object.entries(out)[0];
      switch (kind) {
        case 'send':
          sendMessage(value);
          return undefined;
        case 'new-peer':
          return newPeer(value.offerer, (input) => this.feed(input), value.iceServers || []);
        case 'close-peer':
          endCall();
          return undefined;
        case 'create-offer':
          return call ? call.makeOffer(value.ice_restart) : undefined;
        case 'rollback':
          return call ? call.rollback() : undefined;
        case 'set-remote':
          return call ? call.setRemote(value) : undefined;
        case 'create-answer':
          return call ? call.makeAnswer() : undefined;
        case 'add-candidate':
          return call ? call.addCandidate(value) : undefined;
        case 'start-media':
          // Media runs on the peer connection's tracks: nothing to start separately.
          log('media flowing');
          return undefined;
        case 'state':
          if (value.state === 'ended' || value.state === 'failed') this.dispose();
          showCallState(value, this.cause);
          return undefined;
        case 'warning':
          showWarning(value);
          return undefined;
        case 'arm-timer': {
          clearTimeout(this.timers.get(value.timer));
          const timer = setTimeout(() => {
            this.timers.delete(value.timer);
            this.feed({ timer: value.timer });
          }, value.in_ms);
          this.timers.set(value.timer, timer);
          return undefined;
        }
        case 'cancel-timer':
          clearTimeout(this.timers.get(value));
          this.timers.delete(value);
          return undefined;
        case 'reconnect-signal':
          retryTimer = setTimeout(() => connect(this), value.in_ms);
          return undefined;
        case 'probe-signal':
          // A browser's WebSocket cannot ping; its own keepalive has to notice a dead path.
          return undefined;
        default:
          log('unknown core output', { kind });
          return undefined;
      }
    }
  }

  function sendMessage(message) {
    if (message.type === 'offer') log('offer sent');
    else if (message.type === 'answer') log('answer sent');
    else if (message.type === 'candidate') {
      const c = message.candidate;
      log(c ? 'local candidate sent' : 'end of local candidates', c ? { address: candidateAddress(c.candidate) } : undefined);
    }
    send(message);
  }

  /** What the core's call state means on the page. `cause`: the input it came from. */
  function showCallState(s, cause) {
    switch (s.state) {
      case 'waiting-for-peer':
        if (!wantRoom) return;
        setState(
          'waiting',
          waitingText(),
          peerJustLeft ? 'The other person left the call.' : `Send this link to the person you want to call: ${shareLink()}`,
        );
        peerJustLeft = false;
        return;
      case 'connecting':
        setState('connecting', 'Connecting…', 'Someone joined: setting up the call.');
        return;
      case 'connected':
        hook.timings.connected = hook.timings.connected || epochMs();
        setState('connected', 'Connected', '');
        return;
      case 'reconnecting':
        setState('reconnecting', 'Reconnecting…', 'The connection to the other person was interrupted; restoring it.');
        return;
      case 'peer-left':
        log('peer left');
        peerJustLeft = true;
        return;
      case 'ended':
        return; // hangup() shows it
      case 'failed':
        onCallFailed(String(s.detail || ''), cause);
        return;
      default:
        log('unknown call state', { state: s.state });
    }
  }

  function onCallFailed(reason, cause) {
    const signal = cause && typeof cause === 'object' ? cause.signal : undefined;
    if (signal && signal.type === 'error') {
      onRefused(String(signal.code || 'unknown'), String(signal.message || signal.code));
      return;
    }
    // Lost the server: the socket's close handler says so and reconnects.
    if (cause && typeof cause === 'object' && cause['signal-lost']) return;
    fail(/^could not connect/.test(reason) ? 'no-path' : 'call-failed', reason);
    // The call cannot go on: leave the room (the other side waits again) until the person
    // chooses to join again.
    send({ type: 'leave', room: config.room });
    wantRoom = false;
    endCall();
    stopMedia();
    setState('failed', 'The call failed', `${capitalise(reason)}.`);
  }

  /** The server refused the join (room full, bad name, token needed, ...). */
  function onRefused(code, text) {
    // Not in the room: release the camera until the person tries again.
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

  /** A fresh RTCPeerConnection for a new person; returns `operation-failed` if it cannot be built. */
  function newPeer(offerer, feed, serverIce) {
    endCall();
    hook.offerer = offerer !== null ? offerer : lastReady ? lastReady.offerer : null;
    // Timings of this pairing only (the page may have had earlier peers in this room).
    hook.timings = { joinSent: hook.timings.joinSent, ready: lastReady ? lastReady.at : epochMs() };
    lastReady = null;
    remoteStream = new MediaStream();
    ui.remoteVideo.srcObject = remoteStream;
    try {
      call = new Call(offerer, feed, serverIce);
    } catch (e) {
      return { 'operation-failed': { what: 'creating the peer connection', reason: e.message } };
    }
    hook.peerConnections += 1;
    return undefined;
  }

  // ---------------------------------------------------------------- the call

  let call = null;
  let remoteStream = null;

  function endCall() {
    if (call) {
      call.close();
      call = null;
    }
    hook.verification = null;
    ui.verify.hidden = true;
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

  /** Codecs of `kind` ordered H.264 42e01f (packetization-mode 1) first, or Opus first; with
   * `?codec=NAME`, only that video codec. */
  function preferredCodecs(kind) {
    const caps = window.RTCRtpReceiver && RTCRtpReceiver.getCapabilities && RTCRtpReceiver.getCapabilities(kind);
    if (!caps) return null;
    const ranked = caps.codecs
      // No RTX/RED/FEC entries: duet's native peer negotiates none of them, and a browser offer
      // carrying an RTX SSRC group leaves webrtc-rs waiting on the wrong stream.
      .filter((codec) => !/\/(rtx|red|ulpfec|flexfec-03)$/i.test(codec.mimeType))
      .map((codec, i) => ({ codec, i, rank: rankCodec(kind, codec) }))
      .sort((a, b) => a.rank - b.rank || a.i - b.i)
      .map((c) => c.codec);
    if (kind !== 'video' || !config.videoCodec) return ranked;
    const wanted = `video/${config.videoCodec}`;
    const only = ranked.filter((codec) => codec.mimeType.toLowerCase() === wanted);
    // A codec this browser lacks keeps every codec (and says so) rather than leaving no video.
    if (!only.length) log('this browser has no such video codec; using all', { codec: config.videoCodec });
    return only.length ? only : ranked;
  }

  /** One RTCPeerConnection, driven by the session's core: it does what it is told and reports. */
  class Call {
    /** `offerer`: true (offer), false (answer) or null (seed: both offer). `feed`: to the core. */
    constructor(offerer, feed, serverIce) {
      this.closed = false;
      this.firstFramePoll = null;
      this.feed = (input) => {
        if (!this.closed) feed(input);
      };
      this.serverIce = serverIce;
      this.pc = this.buildPc(offerer);
      this.watchFirstFrame();
    }

    /** A new RTCPeerConnection with this call's handlers and local tracks. */
    buildPc(offerer) {
      const pc = new RTCPeerConnection({ iceServers: config.iceServers.concat(this.serverIce || []) });

      pc.onicecandidate = (event) => {
        const c = event.candidate;
        if (!c) {
          this.feed('gathering-complete');
          return;
        }
        // Firefox ends each m-line with an empty candidate; `null` above ends them all.
        if (!c.candidate) return;
        if (config.loopbackOnly && !isLoopbackAddress(candidateAddress(c.candidate))) {
          log('local candidate not sent (not loopback)', { address: candidateAddress(c.candidate) });
          return;
        }
        this.feed({ 'local-candidate': c.toJSON() });
      };
      pc.ontrack = (event) => {
        if (this.closed || !remoteStream) return;
        log('remote track', { kind: event.track.kind });
        if (!remoteStream.getTracks().includes(event.track)) remoteStream.addTrack(event.track);
        ui.remoteVideo.srcObject = remoteStream;
        playRemote();
      };
      pc.onicegatheringstatechange = () => log('ICE gathering', { state: pc.iceGatheringState });
      pc.oniceconnectionstatechange = () => log('ICE state', { state: pc.iceConnectionState });
      pc.onconnectionstatechange = () => {
        log('connection state', { state: pc.connectionState });
        this.feed({ 'pc-state': pc.connectionState });
      };
      pc.onsignalingstatechange = () => {
        if (pc.signalingState !== 'stable') return;
        const local = pc.localDescription && pc.localDescription.sdp;
        const remote = pc.remoteDescription && pc.remoteDescription.sdp;
        DuetNegotiation.callCode(local, remote).then((code) => {
          if (this.closed || !code) return;
          hook.verification = code;
          ui.verify.textContent = `Code ${code}`;
          ui.verify.hidden = false;
        });
      };

      for (const kind of ['audio', 'video']) {
        const track = localTrack(kind);
        if (track) pc.addTrack(track, localStream);
        else if (offerer !== false) pc.addTransceiver(kind, { direction: 'recvonly' });
      }
      return pc;
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

    /**
     * With `?codec=`, send that codec too. setCodecPreferences only says what this page will
     * receive; when answering, Chromium sends the first codec of the *offer* it can encode
     * (codecs may differ per direction), so the send side is pinned on the sender's encoding.
     */
    async pinSendCodec() {
      if (!config.videoCodec) return;
      const wanted = `video/${config.videoCodec}`;
      for (const sender of this.pc.getSenders()) {
        if (!sender.track || sender.track.kind !== 'video') continue;
        const caps = (RTCRtpSender.getCapabilities && RTCRtpSender.getCapabilities('video')) || { codecs: [] };
        const codec = caps.codecs.find((c) => c.mimeType.toLowerCase() === wanted);
        const params = sender.getParameters();
        if (!codec || !params.encodings || !params.encodings.length) continue;
        params.encodings.forEach((e) => {
          e.codec = codec;
        });
        try {
          await sender.setParameters(params);
        } catch (e) {
          log('cannot pin the send codec', { codec: config.videoCodec, message: e.message });
        }
      }
    }

    /** `what` failed with `e`: the core's input for it, unless this call was closed meanwhile. */
    failed(what, e) {
      return this.closed ? undefined : { 'operation-failed': { what, reason: e.message || String(e) } };
    }

    async makeOffer(iceRestart) {
      const pc = this.pc;
      this.preferCodecs();
      try {
        // createOffer({iceRestart}) rather than restartIce(): the core, not negotiationneeded,
        // decides when to offer.
        await pc.setLocalDescription(await pc.createOffer(iceRestart ? { iceRestart: true } : {}));
      } catch (e) {
        return this.failed(iceRestart ? 'creating a restart offer' : 'creating an offer', e);
      }
      if (this.closed) return undefined;
      if (iceRestart) log('ICE restart offer made');
      return { 'local-offer': { type: 'offer', sdp: pc.localDescription.sdp } };
    }

    async rollback() {
      log('offer collision: rolling back our offer (polite)');
      if (!this.pc.currentRemoteDescription) {
        // Nothing was ever negotiated on this connection: answer on a fresh one instead.
        // Chromium, rolling back a first offer while it gathers candidates, was seen to gather
        // nothing more on that connection after the answer (about one run in six), so the
        // call never connected.
        log('answering on a fresh peer connection');
        this.detach(this.pc);
        this.pc.close();
        this.pc = this.buildPc(false);
        return undefined;
      }
      try {
        await this.pc.setLocalDescription({ type: 'rollback' });
      } catch (e) {
        return this.failed('rolling back our offer', e);
      }
      return undefined;
    }

    async setRemote(desc) {
      try {
        await this.pc.setRemoteDescription({ type: desc.type, sdp: DuetNegotiation.tidyFormats(desc.sdp) });
      } catch (e) {
        return this.closed ? undefined : { 'remote-rejected': { kind: desc.type, reason: e.message || String(e) } };
      }
      if (desc.type === 'answer') await this.pinSendCodec();
      return this.closed ? undefined : { 'remote-applied': { kind: desc.type } };
    }

    async makeAnswer() {
      const pc = this.pc;
      // A rollback may have left a local track unattached: attach what we have.
      for (const kind of ['audio', 'video']) {
        const track = localTrack(kind);
        if (track && !pc.getSenders().some((s) => s.track === track)) this.useTrack(kind, track);
      }
      this.preferCodecs();
      try {
        await pc.setLocalDescription(await pc.createAnswer());
      } catch (e) {
        return this.failed('creating an answer', e);
      }
      await this.pinSendCodec();
      if (this.closed) return undefined;
      return { 'local-answer': { type: 'answer', sdp: pc.localDescription.sdp } };
    }

    async addCandidate(candidate) {
      try {
        await this.pc.addIceCandidate(candidate);
      } catch (e) {
        return this.closed ? undefined : { 'candidate-rejected': { reason: e.message || String(e) } };
      }
      return undefined;
    }

    /**
     * Sends `track` as this call's `kind`. Where nothing of that kind was being sent, it goes out
     * from the next negotiation (an ICE restart or the next call): only the core offers.
     */
    useTrack(kind, track) {
      const pc = this.pc;
      const transceiver = pc
        .getTransceivers()
        .find((t) => t.receiver.track.kind === kind && t.currentDirection !== 'stopped');
      if (!transceiver) {
        if (track) pc.addTrack(track, localStream);
        return;
      }
      transceiver.sender.replaceTrack(track).catch((e) => log('replaceTrack failed', { message: e.message }));
      if (transceiver.direction === 'sendrecv' || transceiver.direction === 'sendonly') return;
      transceiver.direction = 'sendrecv';
      transceiver.sender.setStreams && transceiver.sender.setStreams(localStream);
      return 'later';
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

    /** Stops `pc`'s handlers from reaching the core. */
    detach(pc) {
      pc.onicecandidate = null;
      pc.ontrack = null;
      pc.onconnectionstatechange = null;
      pc.onsignalingstatechange = null;
      pc.onicegatheringstatechange = null;
      pc.oniceconnectionstatechange = null;
    }

    close() {
      this.closed = true;
      clearTimeout(this.firstFramePoll);
      this.detach(this.pc);
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
    if (session) session.finish('hang-up');
    else send({ type: 'leave', room: config.room });
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
  if (navigator.mediaDevices && typeof navigator.mediaDevices.getDisplayMedia === 'function') {
    ui.shareButton.hidden = false;
    ui.shareButton.addEventListener('click', toggleScreenShare);
  }
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
