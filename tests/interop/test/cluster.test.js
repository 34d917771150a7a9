'use strict';
// Cluster mode with the real clients: a nats-server and three pushgate nodes, pusher-js
// clients spread over them, the SDK publishing and querying through one node. Presence members
// agree everywhere, member_added comes once per member, a trigger reaches every node once.
// Skipped where nats-server is not installed (NATS_SERVER or Debian's /usr/sbin/nats-server).

const { describe, test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const fs = require('node:fs');

const {
  startServer, makeSdk, freePort, disconnectAll, HOST, NATS, until, connects, clusterNodes,
} = require('../lib/server');
const { sleep, uniqueChannel, subscribe, makeRecorder, recordEvents } = require('../lib/helpers');
const { makeAuthClient, jsonBody } = require('../lib/clients');

const GRACE_MS = 400;

describe('pushgate: three nodes over NATS (pusher-js + pusher SDK)', { skip: !fs.existsSync(NATS) && 'nats-server is not installed', timeout: 58_000 }, () => {
  let nats;
  const nodes = [];
  const sdks = [];

  before(async () => {
    const port = await freePort();
    nats = spawn(NATS, ['-a', HOST, '-p', String(port)], { stdio: 'ignore' });
    await until(() => connects(port), 'nats-server accepts connections');
    for (let i = 0; i < 3; i++) {
      const config =
        `[cluster]\nadapter = "nats"\nservers = ["nats://${HOST}:${port}"]\n` +
        `node = "interop-${i}"\nheartbeat_ms = 200\nnode_timeout_ms = 1500\n`;
      const node = await startServer({ shards: 2, config, single: true });
      nodes.push(node);
      sdks.push(makeSdk(node));
    }
    await until(async () => (await Promise.all(nodes.map(clusterNodes))).every((n) => n === 2), 'nodes see each other');
  });

  after(async () => {
    disconnectAll();
    for (const node of nodes) await node.stop();
    if (nats) nats.kill('SIGKILL');
  });

  async function usersOn(i, name) {
    const res = await sdks[i].get({ path: `/channels/${name}/users` });
    assert.equal(res.status, 200);
    return (await jsonBody(res)).users.map((u) => u.id).sort();
  }

  test('presence members agree on every node; member_added once; a trigger reaches all', { timeout: 40_000 }, async () => {
    const name = uniqueChannel('presence-cluster');
    const users = ['ann', 'bob', 'cy'];
    const channels = [];
    const events = [];
    for (let i = 0; i < 3; i++) {
      const before = users.slice(0, i).sort();
      await until(async () => {
        const lists = await Promise.all([0, 1, 2].map((n) => usersOn(n, name)));
        return lists.every((l) => JSON.stringify(l) === JSON.stringify(before));
      }, `every node lists ${before}`);
      const client = makeAuthClient(nodes[i], { sdk: sdks[i], presence: { user_id: users[i], user_info: { node: i } } });
      const channel = await subscribe(client, name);
      assert.equal(channel.members.count, i + 1, `node ${i} sees ${channel.members.count} members`);
      const rec = makeRecorder(`member_added on node ${i}`);
      channel.bind('pusher:member_added', (m) => rec.push(m.id));
      channels.push(channel);
      events.push(rec);
    }
    await events[0].waitFor(2);
    await events[1].waitFor(1);
    const triggers = channels.map((ch) => recordEvents(ch, 'news'));
    await sdks[0].trigger(name, 'news', { n: 1 });
    await Promise.all(triggers.map((r) => r.waitFor(1)));
    await sleep(GRACE_MS);
    assert.deepEqual(events[0].received, ['bob', 'cy']);
    assert.deepEqual(events[1].received, ['cy']);
    assert.deepEqual(events[2].received, []);
    for (const r of triggers) assert.equal(r.received.length, 1);
    for (let i = 0; i < 3; i++) assert.deepEqual(await usersOn(i, name), ['ann', 'bob', 'cy']);
  });
});
