'use strict';
// Channel information through the SDK: GET /channels/<name> with
// info=subscription_count / user_count, and `info` on trigger, with
// subscribers spread over both shards. One server (2 shards).

const { describe, test } = require('node:test');
const assert = require('node:assert/strict');

const { makeSdk, makeClient, disconnectClient, serverPerFile } = require('../lib/server');
const { uniqueChannel, subscribe, recordEvents } = require('../lib/helpers');
const { makeAuthClient, connectOnShard, shardOf, jsonBody } = require('../lib/clients');

const TEST_MS = 15_000;

describe('pushgate: channel queries and trigger info (pusher SDK)', { timeout: 58_000 }, () => {
  let server;
  let sdk;

  serverPerFile((s) => {
    server = s;
    sdk = makeSdk(server);
  });

  /** Clients placed on shards, e.g. [0, 0, 0, 1, 1]. */
  async function clientsOn(shards, factory = () => makeAuthClient(server, { sdk })) {
    const out = [];
    for (const s of shards) out.push(await connectOnShard(factory, s, { disconnect: disconnectClient }));
    assert.deepEqual(out.map((c) => shardOf(c)), shards);
    return out;
  }

  async function channelInfo(name, info) {
    const res = await sdk.get({ path: `/channels/${name}`, params: info ? { info } : {} });
    assert.equal(res.status, 200);
    return jsonBody(res);
  }

  /** Unsubscribes and waits until the server has processed it (a later subscribe succeeds). */
  async function unsubscribeSync(client, name) {
    client.unsubscribe(name);
    await subscribe(client, uniqueChannel('barrier'));
  }

  test('1. public channel: subscription_count over both shards, via GET and via trigger info', { timeout: TEST_MS }, async () => {
    const name = uniqueChannel('count');
    const clients = await clientsOn([0, 0, 0, 1, 1], () => makeClient(server));
    const channels = await Promise.all(clients.map((c) => subscribe(c, name)));

    assert.deepEqual(await channelInfo(name, 'subscription_count'), { occupied: true, subscription_count: 5 });

    const recs = channels.map((ch) => recordEvents(ch, 'counted'));
    const res = await sdk.trigger(name, 'counted', { n: 1 }, { info: 'subscription_count' });
    assert.equal(res.status, 200);
    const body = await jsonBody(res);
    assert.ok(body.channels && body.channels[name], `trigger response: ${JSON.stringify(body)}`);
    assert.equal(body.channels[name].subscription_count, 5, `trigger response: ${JSON.stringify(body)}`);
    await Promise.all(recs.map((r) => r.waitFor(1)));

    // One leaves on each shard.
    await unsubscribeSync(clients[0], name);
    await unsubscribeSync(clients[4], name);
    assert.deepEqual(await channelInfo(name, 'subscription_count'), { occupied: true, subscription_count: 3 });
    const body2 = await jsonBody(await sdk.trigger(name, 'counted', { n: 2 }, { info: 'subscription_count' }));
    assert.equal(body2.channels[name].subscription_count, 3, `trigger response: ${JSON.stringify(body2)}`);

    // Everyone leaves (disconnect on one shard, unsubscribe on the other).
    disconnectClient(clients[1]);
    disconnectClient(clients[2]);
    await unsubscribeSync(clients[3], name);
    // The disconnects are asynchronous for the server; poll briefly.
    let last;
    for (let i = 0; i < 40; i++) {
      last = await channelInfo(name, 'subscription_count');
      if (last.occupied === false) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(last.occupied, false, `after everyone left: ${JSON.stringify(last)}`);
  });

  test('2. trigger info for several channels at once', { timeout: TEST_MS }, async () => {
    const a = uniqueChannel('info-a');
    const b = uniqueChannel('info-b');
    const c = uniqueChannel('info-c'); // nobody subscribed
    const clients = await clientsOn([0, 1, 1], () => makeClient(server));
    await subscribe(clients[0], a);
    await subscribe(clients[1], a);
    await subscribe(clients[2], a);
    await subscribe(clients[2], b);
    const res = await sdk.trigger([a, b, c], 'multi', { x: 1 }, { info: 'subscription_count' });
    const body = await jsonBody(res);
    assert.ok(body.channels, `trigger response: ${JSON.stringify(body)}`);
    assert.equal(body.channels[a] && body.channels[a].subscription_count, 3, JSON.stringify(body));
    assert.equal(body.channels[b] && body.channels[b].subscription_count, 1, JSON.stringify(body));
    const cCount = body.channels[c] ? body.channels[c].subscription_count : 0;
    assert.equal(cCount, 0, JSON.stringify(body));
  });

  test('3. private channel subscription_count across shards', { timeout: TEST_MS }, async () => {
    const name = uniqueChannel('private-count');
    const clients = await clientsOn([1, 0, 1, 0]);
    await Promise.all(clients.map((c) => subscribe(c, name)));
    assert.deepEqual(await channelInfo(name, 'subscription_count'), { occupied: true, subscription_count: 4 });
    const body = await jsonBody(await sdk.trigger(name, 'e', {}, { info: 'subscription_count' }));
    assert.equal(body.channels[name].subscription_count, 4, JSON.stringify(body));
  });

  test('4. presence channel user_count (distinct users) via GET and trigger info', { timeout: TEST_MS }, async () => {
    const name = uniqueChannel('presence-count');
    const users = ['p1', 'p2', 'p1', 'p3']; // p1 twice, on different shards
    const shards = [0, 1, 1, 0];
    const clients = [];
    for (let i = 0; i < users.length; i++) {
      const factory = () => makeAuthClient(server, { sdk, presence: { user_id: users[i], user_info: {} } });
      clients.push(await connectOnShard(factory, shards[i], { disconnect: disconnectClient }));
    }
    await Promise.all(clients.map((c) => subscribe(c, name)));
    const info = await channelInfo(name, 'user_count');
    assert.equal(info.occupied, true, JSON.stringify(info));
    assert.equal(info.user_count, 3, JSON.stringify(info));
    const body = await jsonBody(await sdk.trigger(name, 'e', {}, { info: 'user_count' }));
    assert.equal(body.channels && body.channels[name] && body.channels[name].user_count, 3, JSON.stringify(body));
  });

  test('5. GET of an unknown channel is unoccupied; info on a non-presence channel rejects user_count', { timeout: TEST_MS }, async () => {
    const name = uniqueChannel('never');
    const body = await channelInfo(name);
    assert.equal(body.occupied, false, JSON.stringify(body));
    // Pusher answers 400 for user_count on a non-presence channel.
    const res = await sdk
      .get({ path: `/channels/${name}`, params: { info: 'user_count' } })
      .then((r) => r, (e) => e);
    assert.equal(res.status, 400, `status ${res.status}: ${res.body || ''}`);
  });
});
