// A client written for the seed server (Node's `ws`, the seed's message shapes, no knowledge of
// duet's extensions) works against `signal` unchanged: join, ready to both, offer/answer and
// candidates (including the null end-of-candidates) relayed to the other member only.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const WebSocket = require('ws');
const lib = require('./lib');

/** A seed-style client: the same calls a seed client makes, and a queue of what it hears. */
function seedClient(url) {
  const ws = new WebSocket(url);
  const inbox = [];
  let waiter = null;
  ws.on('message', (data) => {
    inbox.push(JSON.parse(data.toString()));
    if (waiter) waiter();
  });
  const next = (timeoutMs = 5000) =>
    new Promise((resolve, reject) => {
      const take = () => {
        if (inbox.length) {
          waiter = null;
          clearTimeout(timer);
          resolve(inbox.shift());
        }
      };
      const timer = setTimeout(() => reject(new Error('no message within ' + timeoutMs + ' ms')), timeoutMs);
      waiter = take;
      take();
    });
  const opened = new Promise((resolve, reject) => {
    ws.on('open', resolve);
    ws.on('error', reject);
  });
  return { ws, next, inbox, opened, send: (m) => ws.send(JSON.stringify(m)) };
}

test('a seed client (Node ws) works against signal unchanged', { timeout: 30000 }, async (t) => {
  const signal = await lib.startSignal();
  t.after(() => signal.stop());
  const url = `ws://127.0.0.1:${signal.port}`;
  const a = seedClient(url);
  const b = seedClient(url);
  t.after(() => {
    a.ws.close();
    b.ws.close();
  });
  await Promise.all([a.opened, b.opened]);

  // Either order of arrival gives both a `ready`.
  a.send({ type: 'join', room: 'seed-room' });
  b.send({ type: 'join', room: 'seed-room' });
  const [ra, rb] = [await a.next(), await b.next()];
  // Seed clients look only at `type` (and `room`); the extra `offerer` field does not disturb them.
  assert.equal(ra.type, 'ready');
  assert.equal(rb.type, 'ready');
  assert.equal(ra.room, 'seed-room');

  const offer = { type: 'offer', room: 'seed-room', offer: { type: 'offer', sdp: 'v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n' } };
  a.send(offer);
  assert.deepEqual(await b.next(), offer);
  const answer = { type: 'answer', room: 'seed-room', answer: { type: 'answer', sdp: 'v=0\r\n' } };
  b.send(answer);
  assert.deepEqual(await a.next(), answer);
  const candidate = {
    type: 'candidate',
    room: 'seed-room',
    candidate: { candidate: 'candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host', sdpMid: '0', sdpMLineIndex: 0 },
  };
  a.send(candidate);
  b.send(candidate);
  assert.deepEqual(await b.next(), candidate);
  assert.deepEqual(await a.next(), candidate);
  const end = { type: 'candidate', room: 'seed-room', candidate: null };
  a.send(end);
  assert.deepEqual(await b.next(), end);
  // Nothing was echoed back to a sender: a marker sent after everything above is the very next
  // message each side receives (the server handles one socket's messages in order, so an echo
  // of an earlier message would have been queued before the marker).
  const markA = { type: 'candidate', room: 'seed-room', candidate: { candidate: 'marker-from-a', sdpMid: '0', sdpMLineIndex: 0 } };
  const markB = { type: 'candidate', room: 'seed-room', candidate: { candidate: 'marker-from-b', sdpMid: '0', sdpMLineIndex: 0 } };
  a.send(markA);
  assert.deepEqual(await b.next(), markA);
  b.send(markB);
  assert.deepEqual(await a.next(), markB);
  assert.equal(a.inbox.length, 0);
  assert.equal(b.inbox.length, 0);
});
