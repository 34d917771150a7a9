'use strict';
// End-to-end encrypted channels (SDK with encryptionMasterKeyBase64, pusher-js
// decrypting with its bundled tweetnacl) and cache channels (replay of the
// last event on subscribe, pusher:cache_miss). One server (2 shards).

const crypto = require('node:crypto');
const { describe, test } = require('node:test');
const assert = require('node:assert/strict');

const { makeSdk, makeClient, serverPerFile } = require('../lib/server');
const {
  sleep,
  uniqueChannel,
  waitForConnected,
  subscribe,
  makeRecorder,
  recordEvents,
  recordRaw,
} = require('../lib/helpers');
const { makeAuthClient, recordConnectionErrors } = require('../lib/clients');

const TEST_MS = 8000;
const GRACE_MS = 400;

describe('pushgate: encrypted and cache channels (pusher-js + pusher SDK)', { timeout: 58_000 }, () => {
  let server;
  let sdk;
  let encSdk;

  serverPerFile((s) => {
    server = s;
    sdk = makeSdk(server);
    encSdk = makeSdk(server, { encryptionMasterKeyBase64: crypto.randomBytes(32).toString('base64') });
  });

  async function publicClient() {
    const c = makeClient(server);
    await waitForConnected(c);
    return c;
  }

  /**
   * Subscribes with a global binding made before the subscription can succeed;
   * records every channel event (including pusher:*) in order.
   */
  async function subscribeRecording(client, name) {
    const channel = client.subscribe(name);
    const all = makeRecorder(`events on "${name}"`);
    channel.bind_global((event, data) => all.push({ event, data }));
    await subscribe(client, name);
    return { channel, all };
  }

  test('1. private-encrypted: SDK trigger is decrypted by pusher-js', { timeout: TEST_MS }, async () => {
    const client = makeAuthClient(server, { sdk: encSdk });
    await waitForConnected(client);
    const errors = recordConnectionErrors(client);
    const name = uniqueChannel('private-encrypted');
    const channel = await subscribe(client, name);
    assert.ok(
      client.__authLog[0] && typeof client.__authLog[0].res.shared_secret === 'string',
      `the SDK gave no shared_secret: ${JSON.stringify(client.__authLog)}`
    );
    const rec = recordEvents(channel, 'sealed');
    const raw = recordRaw(client);

    const data = { secret: 'the eagle has landed', n: 7, list: ['a', { b: true }], unicode: 'ü ✓' };
    const res = await encSdk.trigger(name, 'sealed', data);
    assert.equal(res.status, 200);
    const [got] = await rec.waitFor(1);
    assert.deepEqual(got, data);

    // On the wire the server relayed ciphertext, not the plaintext.
    const frame = raw.received.find((m) => m.channel === name);
    assert.ok(frame, `no raw frame on ${name}: ${JSON.stringify(raw.received)}`);
    const wire = typeof frame.data === 'string' ? JSON.parse(frame.data) : frame.data;
    assert.equal(typeof wire.ciphertext, 'string', `wire data: ${JSON.stringify(frame.data)}`);
    assert.equal(typeof wire.nonce, 'string', `wire data: ${JSON.stringify(frame.data)}`);
    assert.ok(!JSON.stringify(frame.data).includes('eagle'), 'plaintext visible on the wire');
    assert.deepEqual(errors.received, []);
  });

  test('2. cache channel: an event published before subscribing is replayed on subscribe', { timeout: TEST_MS }, async () => {
    const name = uniqueChannel('cache');
    const first = { version: 1 };
    const last = { version: 2, text: 'latest' };
    await sdk.trigger(name, 'state', first);
    await sdk.trigger(name, 'state', last);

    const client = await publicClient();
    const { all } = await subscribeRecording(client, name);
    await all.waitFor(2);
    await sleep(GRACE_MS);
    assert.deepEqual(all.received, [
      { event: 'pusher:subscription_succeeded', data: all.received[0].data },
      { event: 'state', data: last },
    ]);

    // Second subscriber on another connection also gets the cached event, and
    // live events keep flowing to both.
    const client2 = await publicClient();
    const sub2 = await subscribeRecording(client2, name);
    await sub2.all.waitFor(2);
    assert.deepEqual(sub2.all.received[1], { event: 'state', data: last });
    const live = { version: 3 };
    await sdk.trigger(name, 'state', live);
    await Promise.all([all.waitFor(3), sub2.all.waitFor(3)]);
    assert.deepEqual(all.received[2], { event: 'state', data: live });
    assert.deepEqual(sub2.all.received[2], { event: 'state', data: live });
    assert.ok(
      !all.received.concat(sub2.all.received).some((e) => e.event === 'pusher:cache_miss'),
      'cache_miss on a channel that has a cached event'
    );
  });

  test('3. cache channel never published: pusher:cache_miss, then live events work', { timeout: TEST_MS }, async () => {
    const name = uniqueChannel('cache-empty');
    const client = await publicClient();
    const channel = client.subscribe(name);
    const misses = makeRecorder(`pusher:cache_miss on "${name}"`);
    channel.bind('pusher:cache_miss', (d) => misses.push(d === undefined ? null : d));
    const rec = recordEvents(channel, 'state');
    await subscribe(client, name);
    await misses.waitFor(1);
    await sleep(GRACE_MS);
    assert.equal(misses.received.length, 1, `cache_miss count: ${JSON.stringify(misses.received)}`);
    assert.deepEqual(rec.received, [], 'an event arrived on a never-published cache channel');

    // Positive control: a live event arrives, and a later subscriber gets it from the cache.
    await sdk.trigger(name, 'state', { now: 'published' });
    await rec.waitFor(1);
    assert.deepEqual(rec.received, [{ now: 'published' }]);
    const client2 = await publicClient();
    const sub2 = await subscribeRecording(client2, name);
    await sub2.all.waitFor(2);
    assert.deepEqual(sub2.all.received[1], { event: 'state', data: { now: 'published' } });
  });

  test('4. private-cache channel replays too (authorized with the SDK)', { timeout: TEST_MS }, async () => {
    const name = uniqueChannel('private-cache');
    await sdk.trigger(name, 'state', { p: 1 });
    const client = makeAuthClient(server, { sdk });
    await waitForConnected(client);
    const { all } = await subscribeRecording(client, name);
    await all.waitFor(2);
    assert.deepEqual(all.received[1], { event: 'state', data: { p: 1 } });
  });
});
