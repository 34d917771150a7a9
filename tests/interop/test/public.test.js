'use strict';
// pusher-js (client) and the official `pusher` server SDK against pushgate,
// public channels only. One server (2 shards) for the whole file.

const { describe, test, before, after, afterEach } = require('node:test');
const assert = require('node:assert/strict');

const {
  startServer,
  makeClient,
  makeSdk,
  disconnectAll,
} = require('../lib/server');
const {
  sleep,
  uniqueChannel,
  waitForConnected,
  subscribe,
  recordEvents,
  recordRaw,
} = require('../lib/helpers');

// Per-test budget. Every wait inside a test has its own, shorter timeout
// (helpers.WAIT_MS), so a broken server fails a test rather than hanging it;
// with the 10 s start-up limit the file stays under a minute.
const TEST_MS = 5000;
// How long to wait for an event that must NOT arrive, after the positive
// control that would have come after it has arrived.
const GRACE_MS = 300;

/** Makes a client and waits until it is connected. */
async function connectedClient(server) {
  const client = makeClient(server);
  await waitForConnected(client);
  return client;
}

describe('pushgate with pusher-js and the pusher server SDK (public channels)', { timeout: 58_000 }, () => {
  let server;
  let sdk;

  before(async () => {
    server = await startServer({ shards: 2 });
    sdk = makeSdk(server);
  }, { timeout: 15_000 });

  afterEach(() => {
    disconnectAll();
  });

  after(async () => {
    disconnectAll();
    if (server) {
      const res = await server.stop();
      if (res.forced || (res.code !== 0 && res.signal !== 'SIGTERM')) {
        // Diagnostic only: a clean SIGTERM shutdown is not what this file tests.
        console.error(
          `# note: pushgate did not exit cleanly on SIGTERM: ${JSON.stringify(res)}\n` +
            server.stderr().slice(-2000)
        );
      }
    }
  });

  test('1. pusher-js connects and gets a socket_id', { timeout: TEST_MS }, async () => {
    const client = makeClient(server);
    await waitForConnected(client);
    assert.equal(client.connection.state, 'connected');
    assert.match(String(client.connection.socket_id), /^\d+\.\d+$/);
  });

  test('2. trigger to a subscribed public channel delivers the same data', { timeout: TEST_MS }, async () => {
    const client = await connectedClient(server);
    const name = uniqueChannel('public');
    const channel = await subscribe(client, name);
    const rec = recordEvents(channel, 'greeting');

    const data = {
      message: 'hello',
      n: 42,
      pi: 3.5,
      ok: true,
      nothing: null,
      list: [1, 'two', { three: 3 }],
      nested: { deep: { deeper: 'yes' } },
      unicode: 'héllo ✓ 日本',
      quotes: 'say "hi" \\ bye',
    };
    await sdk.trigger(name, 'greeting', data);

    const [got] = await rec.waitFor(1);
    assert.deepEqual(got, data);
  });

  test('3. trigger to several channels reaches a client on two of them', { timeout: TEST_MS }, async () => {
    const client = await connectedClient(server);
    const [a, b, c, d] = [1, 2, 3, 4].map(() => uniqueChannel('multi'));
    const chA = await subscribe(client, a);
    const chC = await subscribe(client, c);
    const recA = recordEvents(chA, 'multi-event');
    const recC = recordEvents(chC, 'multi-event');

    const data = { to: 'many', at: Date.now() };
    await sdk.trigger([a, b, c, d], 'multi-event', data);

    await Promise.all([recA.waitFor(1), recC.waitFor(1)]);
    assert.deepEqual(recA.received[0], data);
    assert.deepEqual(recC.received[0], data);
    await sleep(GRACE_MS);
    assert.equal(recA.received.length, 1, `"${a}" got the event more than once`);
    assert.equal(recC.received.length, 1, `"${c}" got the event more than once`);
  });

  test('4. triggerBatch delivers every event with its own data', { timeout: TEST_MS }, async () => {
    const client = await connectedClient(server);
    const names = [1, 2, 3, 4].map(() => uniqueChannel('batch'));
    const channels = [];
    for (const n of names) channels.push(await subscribe(client, n));
    const recs = channels.map((ch) => recordEvents(ch, 'batch-event'));

    const expected = names.map((channel, i) => ({ index: i, channel, text: `event number ${i}` }));
    // (triggerBatch serializes each event's data in place, so pass copies.)
    const batch = names.map((channel, i) => ({ channel, name: 'batch-event', data: { ...expected[i] } }));
    await sdk.triggerBatch(batch);

    await Promise.all(recs.map((r) => r.waitFor(1)));
    recs.forEach((r, i) => {
      assert.deepEqual(r.received, [expected[i]], `wrong data on "${names[i]}"`);
    });
  });

  test('5. socket_id excludes the sender', { timeout: TEST_MS }, async () => {
    const [clientA, clientB] = await Promise.all([connectedClient(server), connectedClient(server)]);
    const name = uniqueChannel('exclude');
    const [chA, chB] = await Promise.all([subscribe(clientA, name), subscribe(clientB, name)]);
    const recA = recordEvents(chA, 'news');
    const recB = recordEvents(chB, 'news');
    const rawA = recordRaw(clientA);

    const excluded = { seq: 1, excluded: clientA.connection.socket_id };
    await sdk.trigger(name, 'news', excluded, { socket_id: clientA.connection.socket_id });
    await recB.waitFor(1);
    assert.deepEqual(recB.received[0], excluded);
    await sleep(GRACE_MS);

    // Positive control: an event that is not excluded must reach A; had the
    // first one reached A, it would have arrived before this one.
    const control = { seq: 2, excluded: null };
    await sdk.trigger(name, 'news', control);
    await Promise.all([recA.waitFor(1), recB.waitFor(2)]);
    assert.deepEqual(recB.received, [excluded, control]);
    assert.deepEqual(recA.received, [control], 'client A (the excluded socket) received the excluded event');
    assert.equal(
      rawA.received.filter((m) => m.channel === name).length,
      1,
      `client A got unexpected messages: ${JSON.stringify(rawA.received)}`
    );
  });

  test('6. trigger resolves with 200; a wrong secret is rejected with 401', { timeout: TEST_MS }, async () => {
    const client = await connectedClient(server);
    const name = uniqueChannel('auth');
    const channel = await subscribe(client, name);
    const rec = recordEvents(channel, 'signed');

    const bad = makeSdk(server, { secret: 'wrong' });
    await assert.rejects(bad.trigger(name, 'signed', { from: 'bad' }), (err) => {
      assert.equal(
        err.status,
        401,
        `expected HTTP 401, got status ${err.status}: ${err.message}` +
          (err.body ? ` body: ${err.body}` : '') +
          (err.error ? ` cause: ${err.error}` : '')
      );
      return true;
    });

    const res = await sdk.trigger(name, 'signed', { from: 'good' });
    assert.equal(res.status, 200);

    // The rejected event must not have been delivered; the accepted one must.
    await rec.waitFor(1);
    await sleep(GRACE_MS);
    assert.deepEqual(rec.received, [{ from: 'good' }]);
  });

  test('7. unsubscribe stops delivery', { timeout: TEST_MS }, async () => {
    const [clientA, clientB] = await Promise.all([connectedClient(server), connectedClient(server)]);
    const name = uniqueChannel('unsub');
    const controlName = uniqueChannel('unsub-control');
    await subscribe(clientA, name);
    const ctlA = await subscribe(clientA, controlName);
    const chB = await subscribe(clientB, name);
    const rawA = recordRaw(clientA);
    const recCtlA = recordEvents(ctlA, 'after-unsub');
    const recB = recordEvents(chB, 'after-unsub');

    clientA.unsubscribe(name);
    // Barrier: the server handles one connection's messages in order, so once
    // this later subscription succeeds the unsubscribe has been processed.
    await subscribe(clientA, uniqueChannel('unsub-barrier'));

    const dropped = { seq: 1 };
    await sdk.trigger(name, 'after-unsub', dropped);
    await recB.waitFor(1); // still subscribed: proves the event was sent
    assert.deepEqual(recB.received, [dropped]);
    await sleep(GRACE_MS);

    // Positive control on a channel A is still subscribed to.
    const control = { seq: 2 };
    await sdk.trigger(controlName, 'after-unsub', control);
    await recCtlA.waitFor(1);
    assert.deepEqual(recCtlA.received, [control]);
    const leaked = rawA.received.filter((m) => m.channel === name);
    assert.deepEqual(leaked, [], `client A received events on "${name}" after unsubscribing`);
  });

  test('8. eight clients across 2 shards all receive one trigger', { timeout: TEST_MS }, async () => {
    const N = 8;
    const clients = await Promise.all(Array.from({ length: N }, () => connectedClient(server)));
    const ids = clients.map((c) => c.connection.socket_id);
    assert.equal(new Set(ids).size, N, `socket_ids are not unique: ${ids.join(', ')}`);

    const name = uniqueChannel('fanout');
    const channels = await Promise.all(clients.map((c) => subscribe(c, name)));
    const recs = channels.map((ch) => recordEvents(ch, 'fanout'));

    const data = { fanout: true, clients: N };
    await sdk.trigger(name, 'fanout', data);

    const results = await Promise.allSettled(recs.map((r) => r.waitFor(1)));
    const missing = results
      .map((r, i) => (r.status === 'rejected' ? ids[i] : null))
      .filter((x) => x !== null);
    assert.deepEqual(missing, [], `${missing.length} of ${N} clients did not receive the event`);
    for (const r of recs) assert.deepEqual(r.received, [data]);
  });
});
