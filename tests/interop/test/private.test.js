'use strict';
// Private channels authorized with the SDK's authorizeChannel (pusher-js
// customHandler, no HTTP auth server), and client events on private and
// presence channels. One server (2 shards) for the whole file.

const { describe, test } = require('node:test');
const assert = require('node:assert/strict');

const { makeSdk, serverPerFile } = require('../lib/server');
const {
  sleep,
  uniqueChannel,
  waitForConnected,
  subscribe,
  makeRecorder,
  recordEvents,
  recordRaw,
} = require('../lib/helpers');
const { makeAuthClient, recordConnectionErrors, recordAllFrames } = require('../lib/clients');

const TEST_MS = 8000;
const GRACE_MS = 300;

describe('pushgate: private channels and client events (pusher-js + pusher SDK)', { timeout: 58_000 }, () => {
  let server;
  let sdk;

  serverPerFile((s) => {
    server = s;
    sdk = makeSdk(server);
  });

  async function authClient(auth) {
    const client = makeAuthClient(server, { sdk, ...auth });
    await waitForConnected(client);
    return client;
  }

  test('1. private channel: authorizeChannel subscription succeeds and a trigger arrives', { timeout: TEST_MS }, async () => {
    const client = await authClient({});
    const name = uniqueChannel('private');
    const channel = await subscribe(client, name);
    assert.equal(channel.subscribed, true);
    assert.equal(client.__authLog.length, 1, JSON.stringify(client.__authLog));
    assert.equal(client.__authLog[0].channelName, name);

    const rec = recordEvents(channel, 'secret-news');
    const data = { private: true, list: [1, 2, 3], text: 'only for the authorized' };
    const res = await sdk.trigger(name, 'secret-news', data);
    assert.equal(res.status, 200);
    const [got] = await rec.waitFor(1);
    assert.deepEqual(got, data);
  });

  test('2. private channel: a wrong-secret signature is refused with pusher:error, no delivery', { timeout: TEST_MS }, async () => {
    const bad = makeSdk(server, { secret: 'wrong' });
    const client = await authClient({ sdk: bad });
    const socketId = client.connection.socket_id;
    const errors = recordConnectionErrors(client);
    const frames = recordAllFrames(client);
    const raw = recordRaw(client);

    const badName = uniqueChannel('private-bad');
    const badChannel = client.subscribe(badName);
    const succeeded = makeRecorder(`subscription_succeeded on "${badName}"`);
    badChannel.bind('pusher:subscription_succeeded', () => succeeded.push(true));

    await errors.waitFor(1);
    const pusherErrors = errors.received.filter((e) => e.type === 'PusherError');
    assert.ok(
      pusherErrors.length >= 1,
      `expected a PusherError (pusher:error frame); connection errors: ${JSON.stringify(errors.received)}; ` +
        `frames: ${JSON.stringify(frames.received)}`
    );
    assert.ok(
      frames.received.some((f) => f.event === 'pusher:error'),
      `no pusher:error frame seen; frames: ${JSON.stringify(frames.received)}`
    );

    // The rejected channel must not receive a trigger.
    await sdk.trigger(badName, 'leak', { should: 'not arrive' });
    await sleep(GRACE_MS);

    // Positive control on the same connection: sign correctly from now on.
    assert.equal(client.connection.state, 'connected', 'the connection was dropped after the refused subscription');
    assert.equal(client.connection.socket_id, socketId, 'the client reconnected after the refused subscription');
    client.__auth.sdk = sdk;
    const goodName = uniqueChannel('private-good');
    const good = await subscribe(client, goodName);
    const recGood = recordEvents(good, 'leak');
    await sdk.trigger(goodName, 'leak', { control: true });
    await recGood.waitFor(1);
    assert.deepEqual(recGood.received, [{ control: true }]);

    assert.deepEqual(succeeded.received, [], `subscription to "${badName}" succeeded with a wrong-secret signature`);
    assert.equal(badChannel.subscribed, false);
    const leaked = raw.received.filter((m) => m.channel === badName);
    assert.deepEqual(leaked, [], `events on the refused channel reached the client: ${JSON.stringify(leaked)}`);
  });

  test('3. client events on a private channel reach the other client, not the sender', { timeout: TEST_MS }, async () => {
    const [a, b] = await Promise.all([authClient({}), authClient({})]);
    const name = uniqueChannel('private-chat');
    const [chA, chB] = await Promise.all([subscribe(a, name), subscribe(b, name)]);
    const recA = recordEvents(chA, 'client-x');
    const recB = recordEvents(chB, 'client-x');
    const rawA = recordRaw(a);
    const errA = recordConnectionErrors(a);
    const errB = recordConnectionErrors(b);

    const fromA = { from: 'a', n: 1, nested: { ok: true } };
    assert.equal(chA.trigger('client-x', fromA), true, 'pusher-js refused to send the client event');
    await recB.waitFor(1);
    assert.deepEqual(recB.received, [fromA]);
    await sleep(GRACE_MS);

    // Positive control: B -> A must arrive, and be the only thing A got.
    const fromB = { from: 'b', n: 2 };
    assert.equal(chB.trigger('client-x', fromB), true);
    await recA.waitFor(1);
    assert.deepEqual(recA.received, [fromB], 'the sender received its own client event');
    assert.deepEqual(recB.received, [fromA], 'B received its own client event');
    assert.deepEqual(
      rawA.received.filter((m) => m.channel === name),
      [{ event: 'client-x', channel: name, data: fromB }]
    );
    assert.deepEqual(errA.received, [], 'unexpected errors on A');
    assert.deepEqual(errB.received, [], 'unexpected errors on B');
  });

  test('4. client events on a presence channel carry metadata.user_id of the sender', { timeout: TEST_MS }, async () => {
    const [a, b] = await Promise.all([
      authClient({ presence: { user_id: 'alice', user_info: { name: 'Alice' } } }),
      authClient({ presence: { user_id: 'bob', user_info: { name: 'Bob' } } }),
    ]);
    const name = uniqueChannel('presence-chat');
    const [chA, chB] = await Promise.all([subscribe(a, name), subscribe(b, name)]);

    const gotB = makeRecorder('client-hello on B');
    chB.bind('client-hello', (data, metadata) => gotB.push({ data, metadata }));
    const gotA = makeRecorder('client-hello on A');
    chA.bind('client-hello', (data, metadata) => gotA.push({ data, metadata }));

    assert.equal(chA.trigger('client-hello', { hi: 'from alice' }), true);
    await gotB.waitFor(1);
    assert.deepEqual(gotB.received[0].data, { hi: 'from alice' });
    assert.equal(
      gotB.received[0].metadata && gotB.received[0].metadata.user_id,
      'alice',
      `metadata was ${JSON.stringify(gotB.received[0].metadata)}`
    );
    await sleep(GRACE_MS);

    // Positive control the other way round.
    assert.equal(chB.trigger('client-hello', { hi: 'from bob' }), true);
    await gotA.waitFor(1);
    assert.deepEqual(gotA.received, [{ data: { hi: 'from bob' }, metadata: { user_id: 'bob' } }]);
    assert.equal(gotB.received.length, 1, 'B received its own client event');
  });
});
