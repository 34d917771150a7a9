'use strict';
// Presence channels authorized with the SDK's authorizeChannel(socketId,
// channel, {user_id, user_info}): members across both shards, member_added /
// member_removed, one user with several connections, and the SDK's user and
// channel queries. One server (2 shards) for the whole file.

const { describe, test } = require('node:test');
const assert = require('node:assert/strict');

const { makeSdk, disconnectClient, serverPerFile } = require('../lib/server');
const { sleep, uniqueChannel, subscribe, makeRecorder } = require('../lib/helpers');
const { makeAuthClient, connectOnShard, shardOf, jsonBody } = require('../lib/clients');

const TEST_MS = 20_000;
const GRACE_MS = 400;

function membersOf(channel) {
  const list = [];
  channel.members.each((m) => list.push({ id: m.id, info: m.info }));
  return list.sort((x, y) => (x.id < y.id ? -1 : x.id > y.id ? 1 : 0));
}

function ids(list) {
  return list.map((m) => m.id);
}

describe('pushgate: presence channels (pusher-js + pusher SDK)', { timeout: 58_000 }, () => {
  let server;
  let sdk;

  serverPerFile((s) => {
    server = s;
    sdk = makeSdk(server);
  });

  /** A connected client on `shard` that joins presence channels as `user`. */
  function userOnShard(user, shard) {
    const info = { name: user[0].toUpperCase() + user.slice(1), shard };
    return connectOnShard(
      () => makeAuthClient(server, { sdk, presence: { user_id: user, user_info: info } }),
      shard,
      { disconnect: disconnectClient }
    );
  }

  /** Records member_added / member_removed on a presence channel, as "+id" / "-id". */
  function recordMembership(channel) {
    const rec = makeRecorder(`member events on "${channel.name}"`);
    channel.bind('pusher:member_added', (m) => rec.push({ ev: `+${m.id}`, info: m.info }));
    channel.bind('pusher:member_removed', (m) => rec.push({ ev: `-${m.id}`, info: m.info }));
    return rec;
  }

  const evs = (rec) => rec.received.map((r) => r.ev);

  async function usersOf(name) {
    const res = await sdk.get({ path: `/channels/${name}/users` });
    assert.equal(res.status, 200);
    const body = await jsonBody(res);
    assert.ok(Array.isArray(body.users), `no users array: ${JSON.stringify(body)}`);
    return body.users.map((u) => u.id).sort();
  }

  async function userCountOf(name) {
    const res = await sdk.get({
      path: '/channels',
      params: { filter_by_prefix: 'presence-', info: 'user_count' },
    });
    assert.equal(res.status, 200);
    const body = await jsonBody(res);
    assert.ok(body.channels && body.channels[name], `"${name}" missing from ${JSON.stringify(body)}`);
    return body.channels[name].user_count;
  }

  test('1. members, member_added / member_removed and queries across both shards', { timeout: TEST_MS }, async () => {
    const name = uniqueChannel('presence-room');

    // observer (shard 0) joins first.
    const observer = await userOnShard('observer', 0);
    const chObs = await subscribe(observer, name);
    const obsEvents = recordMembership(chObs);
    assert.equal(chObs.members.count, 1);
    assert.equal(chObs.members.me && chObs.members.me.id, 'observer');
    assert.deepEqual(membersOf(chObs), [{ id: 'observer', info: { name: 'Observer', shard: 0 } }]);

    // bob (shard 1).
    const bob = await userOnShard('bob', 1);
    const chBob = await subscribe(bob, name);
    const bobEvents = recordMembership(chBob);
    assert.equal(chBob.members.count, 2, `bob sees ${JSON.stringify(membersOf(chBob))}`);
    assert.deepEqual(membersOf(chBob), [
      { id: 'bob', info: { name: 'Bob', shard: 1 } },
      { id: 'observer', info: { name: 'Observer', shard: 0 } },
    ]);
    await obsEvents.waitFor(1);
    assert.deepEqual(obsEvents.received[0], { ev: '+bob', info: { name: 'Bob', shard: 1 } });

    // carol (shard 0).
    const carol = await userOnShard('carol', 0);
    const chCarol = await subscribe(carol, name);
    assert.deepEqual(ids(membersOf(chCarol)), ['bob', 'carol', 'observer']);
    await Promise.all([obsEvents.waitFor(2), bobEvents.waitFor(1)]);

    // alice, first connection (shard 1).
    const alice1 = await userOnShard('alice', 1);
    const chAlice1 = await subscribe(alice1, name);
    assert.equal(chAlice1.members.count, 4);
    assert.deepEqual(ids(membersOf(chAlice1)), ['alice', 'bob', 'carol', 'observer']);
    await Promise.all([obsEvents.waitFor(3), bobEvents.waitFor(2)]);

    // alice, second connection on the OTHER shard, and a third on the same shard:
    // members see no new member_added.
    const alice2 = await userOnShard('alice', 0);
    const chAlice2 = await subscribe(alice2, name);
    assert.equal(chAlice2.members.count, 4, `alice#2 sees ${JSON.stringify(membersOf(chAlice2))}`);
    assert.deepEqual(ids(membersOf(chAlice2)), ['alice', 'bob', 'carol', 'observer']);
    const alice3 = await userOnShard('alice', 1);
    const chAlice3 = await subscribe(alice3, name);
    assert.equal(chAlice3.members.count, 4, `alice#3 sees ${JSON.stringify(membersOf(chAlice3))}`);
    await sleep(GRACE_MS);

    // Positive control: dave (shard 1) joining is the next member_added.
    const dave = await userOnShard('dave', 1);
    await subscribe(dave, name);
    await Promise.all([obsEvents.waitFor(4), bobEvents.waitFor(3)]);
    await sleep(GRACE_MS);
    assert.deepEqual(evs(obsEvents), ['+bob', '+carol', '+alice', '+dave']);
    assert.deepEqual(evs(bobEvents), ['+carol', '+alice', '+dave']);
    assert.equal(chObs.members.count, 5);
    assert.deepEqual(ids(membersOf(chObs)), ['alice', 'bob', 'carol', 'dave', 'observer']);

    // Both shards really are in use.
    const clientShards = [observer, bob, carol, alice1, alice2, alice3, dave].map((c) => shardOf(c));
    assert.deepEqual(clientShards, [0, 1, 0, 1, 0, 1, 1]);

    // SDK queries.
    assert.deepEqual(await usersOf(name), ['alice', 'bob', 'carol', 'dave', 'observer']);
    assert.equal(await userCountOf(name), 5);

    // Closing two of alice's three connections (one per shard) removes nobody...
    disconnectClient(alice2);
    disconnectClient(alice3);
    await sleep(GRACE_MS);
    // ...positive control: carol leaving is the next member_removed.
    disconnectClient(carol);
    await Promise.all([obsEvents.waitFor(5), bobEvents.waitFor(4)]);
    await sleep(GRACE_MS);
    assert.deepEqual(evs(obsEvents).slice(4), ['-carol'], `observer saw ${JSON.stringify(evs(obsEvents))}`);
    assert.deepEqual(evs(bobEvents).slice(3), ['-carol'], `bob saw ${JSON.stringify(evs(bobEvents))}`);
    assert.deepEqual(ids(membersOf(chObs)), ['alice', 'bob', 'dave', 'observer']);
    assert.deepEqual(await usersOf(name), ['alice', 'bob', 'dave', 'observer']);
    assert.equal(await userCountOf(name), 4);

    // alice's last connection closes: now she leaves.
    disconnectClient(alice1);
    await Promise.all([obsEvents.waitFor(6), bobEvents.waitFor(5)]);
    assert.deepEqual(evs(obsEvents).slice(4), ['-carol', '-alice']);
    assert.deepEqual(evs(bobEvents).slice(3), ['-carol', '-alice']);
    assert.equal(chObs.members.count, 3);
    assert.deepEqual(ids(membersOf(chObs)), ['bob', 'dave', 'observer']);
    assert.deepEqual(await usersOf(name), ['bob', 'dave', 'observer']);
    assert.equal(await userCountOf(name), 3);
  });

  test('2. unsubscribing (not disconnecting) leaves the channel; same user elsewhere keeps it', { timeout: TEST_MS }, async () => {
    const name = uniqueChannel('presence-unsub');
    const observer = await userOnShard('watcher', 1);
    const chObs = await subscribe(observer, name);
    const obsEvents = recordMembership(chObs);

    const eve1 = await userOnShard('eve', 0);
    const eve2 = await userOnShard('eve', 1);
    await subscribe(eve1, name);
    await obsEvents.waitFor(1);
    await subscribe(eve2, name);
    await sleep(GRACE_MS);
    assert.deepEqual(evs(obsEvents), ['+eve']);

    eve1.unsubscribe(name);
    await sleep(GRACE_MS);
    assert.deepEqual(evs(obsEvents), ['+eve'], 'member_removed although eve is still subscribed on another connection');
    assert.deepEqual(await usersOf(name), ['eve', 'watcher']);

    eve2.unsubscribe(name);
    await obsEvents.waitFor(2);
    assert.deepEqual(evs(obsEvents), ['+eve', '-eve']);
    assert.deepEqual(await usersOf(name), ['watcher']);
    assert.equal(chObs.members.count, 1);
  });
});
