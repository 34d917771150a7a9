'use strict';
// User sign-in (SDK authenticateUser via pusher-js userAuthentication
// customHandler), sendToUser and terminateUserConnections. One server (2 shards).

const { describe, test } = require('node:test');
const assert = require('node:assert/strict');

const { makeSdk, makeClient, disconnectClient, serverPerFile } = require('../lib/server');
const { sleep, waitForConnected, makeRecorder, recordRaw } = require('../lib/helpers');
const {
  makeAuthClient,
  connectOnShard,
  shardOf,
  recordConnectionErrors,
  recordAllFrames,
  recordStates,
  waitForNotConnected,
  waitForSignin,
} = require('../lib/clients');

const TEST_MS = 12_000;
const GRACE_MS = 400;

/** Close codes found in pusher-js connection errors (close errors may be nested in a WebSocketError). */
function closeCodes(errors) {
  const codes = [];
  for (const e of errors) {
    if (e && e.data && typeof e.data.code === 'number') codes.push(e.data.code);
    if (e && e.error && e.error.data && typeof e.error.data.code === 'number') codes.push(e.error.data.code);
  }
  return codes;
}

describe('pushgate: user sign-in, sendToUser, terminate (pusher-js + pusher SDK)', { timeout: 58_000 }, () => {
  let server;
  let sdk;
  let userSeq = 0;

  serverPerFile((s) => {
    server = s;
    sdk = makeSdk(server);
  });

  function uniqueUser(base) {
    userSeq += 1;
    return `${base}-${process.pid}-${userSeq}`;
  }

  /** A client on `shard`, signed in as `id` (signing with `signer`, default the right SDK). */
  async function signedIn(id, shard, signer = sdk) {
    const client = await connectOnShard(
      () => makeAuthClient(server, { sdk: signer, user: { id, user_info: { name: id } } }),
      shard,
      { disconnect: disconnectClient }
    );
    client.__frames = recordAllFrames(client);
    client.__connErrors = recordConnectionErrors(client);
    client.signin();
    return client;
  }

  function recordUserEvents(client, event) {
    const rec = makeRecorder(`"${event}" on pusher.user`);
    client.user.bind(event, (data) => rec.push(data));
    return rec;
  }

  test('1. signin then sendToUser reaches every connection of that user, on both shards, and nobody else', { timeout: TEST_MS }, async () => {
    const u42 = uniqueUser('u42');
    const u43 = uniqueUser('u43');
    const a1 = await signedIn(u42, 0);
    const a2 = await signedIn(u42, 1);
    const b = await signedIn(u43, 1);
    const plain = makeClient(server);
    await waitForConnected(plain);
    for (const c of [a1, a2, b]) {
      const data = await waitForSignin(c);
      assert.equal(data.id, c.__auth.user.id);
    }
    assert.deepEqual([shardOf(a1), shardOf(a2)], [0, 1]);
    // pusher-js subscribes #server-to-user-<id> after signin_success.
    assert.equal(a1.user.serverToUserChannel.name, `#server-to-user-${u42}`);

    const recA1 = recordUserEvents(a1, 'my-event');
    const recA2 = recordUserEvents(a2, 'my-event');
    const recB = recordUserEvents(b, 'my-event');
    const rawB = recordRaw(b);
    const rawPlain = recordRaw(plain);

    const data = { hello: 'u42', n: 1, nested: { x: [1, 2] } };
    const res = await sdk.sendToUser(u42, 'my-event', data);
    assert.equal(res.status, 200);
    await Promise.all([recA1.waitFor(1), recA2.waitFor(1)]);
    assert.deepEqual(recA1.received, [data]);
    assert.deepEqual(recA2.received, [data]);
    await sleep(GRACE_MS);

    // Positive control: u43 gets its own event, and nothing for u42.
    await sdk.sendToUser(u43, 'my-event', { hello: 'u43' });
    await recB.waitFor(1);
    assert.deepEqual(recB.received, [{ hello: 'u43' }]);
    assert.deepEqual(rawB.received.filter((m) => String(m.channel).includes(u42)), [], 'u43 got u42 events');
    assert.deepEqual(rawPlain.received, [], 'a client that never signed in got user events');
    assert.equal(recA1.received.length, 1);
  });

  test('2. signin signed with a wrong secret is refused; sendToUser does not reach it', { timeout: TEST_MS }, async () => {
    const bad = makeSdk(server, { secret: 'wrong' });
    const uBad = uniqueUser('ubad');
    const c = await signedIn(uBad, 0, bad);
    await c.__connErrors.waitFor(1);
    const frames = c.__frames.received;
    assert.ok(
      frames.some((f) => f.event === 'pusher:error'),
      `expected a pusher:error frame; frames: ${JSON.stringify(frames)}`
    );
    assert.ok(
      !frames.some((f) => f.event === 'pusher:signin_success'),
      `signin succeeded with a wrong secret; frames: ${JSON.stringify(frames)}`
    );
    const raw = recordRaw(c);
    await sdk.sendToUser(uBad, 'my-event', { leak: true });
    await sleep(GRACE_MS);

    // Positive control: a correctly signed-in user on the same server receives.
    const uGood = uniqueUser('ugood');
    const g = await signedIn(uGood, 0);
    await waitForSignin(g);
    const recG = recordUserEvents(g, 'my-event');
    await sdk.sendToUser(uGood, 'my-event', { ok: true });
    await recG.waitFor(1);
    assert.deepEqual(raw.received, [], `the refused user got: ${JSON.stringify(raw.received)}`);
  });

  test('3. terminateUserConnections closes every connection of the user with 4009, others stay', { timeout: TEST_MS }, async () => {
    const u42 = uniqueUser('u42');
    const u43 = uniqueUser('u43');
    const a1 = await signedIn(u42, 0);
    const a2 = await signedIn(u42, 1);
    const b = await signedIn(u43, 0);
    const b2 = await signedIn(u43, 1);
    for (const c of [a1, a2, b, b2]) await waitForSignin(c);
    const statesA1 = recordStates(a1);
    const statesA2 = recordStates(a2);
    const statesB = recordStates(b);
    const statesB2 = recordStates(b2);
    const idB = b.connection.socket_id;
    const idB2 = b2.connection.socket_id;

    // pusher-js handles close code 4009 ("refused") by calling close() on the
    // already closed faye-websocket socket, which arms a 30 s close timer that
    // nothing clears and that keeps node alive; clear it when the test ends.
    // (Client-side quirk only: the server had already closed the TCP connection.)
    const sockets = [a1, a2].map((c) => c.connection.connection.transport.socket);
    try {
      await terminateAndCheck();
    } finally {
      for (const s of sockets) {
        if (s && s.readyState === 3 && s._closeTimer) clearTimeout(s._closeTimer);
      }
    }

    async function terminateAndCheck() {
      const res = await sdk.terminateUserConnections(u42);
      assert.equal(res.status, 200);

      const [s1, s2] = await Promise.all([waitForNotConnected(a1), waitForNotConnected(a2)]);
      await sleep(GRACE_MS);
      const detail = (c, st) =>
        `states: ${JSON.stringify(st.received)}; errors: ${JSON.stringify(c.__connErrors.received)}`;
      assert.ok(closeCodes(a1.__connErrors.received).includes(4009), `a1 (shard 0): ${detail(a1, statesA1)}`);
      assert.ok(closeCodes(a2.__connErrors.received).includes(4009), `a2 (shard 1): ${detail(a2, statesA2)}`);
      // 4009 is "refused" for pusher-js: it stays disconnected.
      assert.ok(['disconnected', 'unavailable', 'failed'].includes(s1), `a1 went to ${s1}`);
      assert.ok(['disconnected', 'unavailable', 'failed'].includes(s2), `a2 went to ${s2}`);
      assert.equal(a1.connection.state, 'disconnected', detail(a1, statesA1));
      assert.equal(a2.connection.state, 'disconnected', detail(a2, statesA2));

      // Positive control: u43 is untouched and still receives user events.
      assert.equal(b.connection.state, 'connected', detail(b, statesB));
      assert.equal(b2.connection.state, 'connected', detail(b2, statesB2));
      assert.equal(b.connection.socket_id, idB);
      assert.equal(b2.connection.socket_id, idB2);
      assert.deepEqual(statesB.received, []);
      assert.deepEqual(statesB2.received, []);
      const recB = recordUserEvents(b, 'after');
      const recB2 = recordUserEvents(b2, 'after');
      await sdk.sendToUser(u43, 'after', { still: 'here' });
      await Promise.all([recB.waitFor(1), recB2.waitFor(1)]);
      assert.deepEqual(recB.received, [{ still: 'here' }]);
    }
  });
  test('4. watchlist: pusher.user.watchlist hears the status at sign-in, then online and offline', { timeout: TEST_MS }, async () => {
    const friend = uniqueUser('friend');
    const away = uniqueUser('away');
    const watcherId = uniqueUser('watcher');
    const watcher = await connectOnShard(
      () => makeAuthClient(server, { sdk, user: { id: watcherId, watchlist: [friend, away] } }),
      0,
      { disconnect: disconnectClient }
    );
    // Every status pusher-js reports, as [name, user id] pairs in arrival order.
    const heard = [];
    for (const name of ['online', 'offline']) {
      watcher.user.watchlist.bind(name, (event) => {
        assert.equal(event.name, name);
        for (const id of event.user_ids) heard.push([event.name, id]);
      });
    }
    const until = async (n, what) => {
      for (let waited = 0; heard.length < n; waited += 20) {
        if (waited > 5_000) throw new Error(`waiting for ${what}; heard ${JSON.stringify(heard)}`);
        await sleep(20);
      }
    };
    try {
      watcher.signin();
      await waitForSignin(watcher);
      await until(2, 'the status at sign-in');
      assert.deepEqual(
        [...heard].sort(),
        [['offline', away], ['offline', friend]].sort(),
        'both watched users are offline at sign-in'
      );
      const f = await signedIn(friend, 1);
      await waitForSignin(f);
      await until(3, 'friend online');
      assert.deepEqual(heard[2], ['online', friend]);
      disconnectClient(f);
      await until(4, 'friend offline');
      assert.deepEqual(heard[3], ['offline', friend]);
      await sleep(GRACE_MS);
      assert.equal(heard.length, 4, JSON.stringify(heard));
    } finally {
      disconnectClient(watcher);
    }
  });
});
