'use strict';
// Pusher webhooks sent by pushgate to a backend (a Node http server in this
// process), checked with the official `pusher` SDK's validator:
// sdk.webhook({headers, rawBody}).isValid(), getEvents(), getTime().
// Events are driven by pusher-js clients: channel_occupied / channel_vacated,
// member_added / member_removed, client_event. One server (2 shards) and one
// backend for the whole file; each test looks only at its own channels.

const { describe, test, before, after, afterEach } = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');

const PusherServer = require('pusher');
const { HOST, APP_ID, APP_KEY, startServer, makeSdk, disconnectAll, disconnectClient } = require('../lib/server');
const { sleep, uniqueChannel, waitForConnected, subscribe, recordEvents } = require('../lib/helpers');
const { makeAuthClient } = require('../lib/clients');

const TEST_MS = 10_000;
const VACATE_DELAY_MS = 300;
const HOOK_WAIT_MS = 4000;
const TIME_SKEW_MS = 5000;
const EVENT_TYPES = ['channel_occupied', 'channel_vacated', 'member_added', 'member_removed', 'client_event'];

/** A backend that records every request (method, url, headers, raw body) and answers 200. */
function startBackend() {
  const requests = [];
  let waiters = [];
  const notify = () => {
    const ready = waiters.filter((w) => w.check());
    waiters = waiters.filter((w) => !ready.includes(w));
    for (const w of ready) w.done();
  };
  const srv = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      requests.push({
        method: req.method,
        url: req.url,
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
        at: Date.now(),
      });
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('ok');
      notify();
    });
  });
  return new Promise((resolve, reject) => {
    srv.on('error', reject);
    srv.listen(0, HOST, () => {
      resolve({
        port: srv.address().port,
        requests,
        /** Resolves with the requests once pred(requests) is true. */
        waitUntil(pred, what, ms = HOOK_WAIT_MS) {
          if (pred(requests)) return Promise.resolve(requests);
          return new Promise((res2, rej2) => {
            const w = {
              check: () => pred(requests),
              done: () => {
                clearTimeout(timer);
                res2(requests);
              },
            };
            const timer = setTimeout(() => {
              waiters = waiters.filter((x) => x !== w);
              rej2(new Error(`timed out after ${ms} ms waiting for ${what}; requests: ${JSON.stringify(requests)}`));
            }, ms);
            waiters.push(w);
          });
        },
        close() {
          srv.closeAllConnections();
          return new Promise((r) => srv.close(() => r()));
        },
      });
    });
  });
}

describe('pushgate: Pusher webhooks validated by the pusher SDK', { timeout: 58_000 }, () => {
  let backend;
  let server;
  let sdk;
  let wrongSdk;

  before(async () => {
    backend = await startBackend();
    const config = [
      '[hooks]',
      `vacate_delay_ms = ${VACATE_DELAY_MS}`,
      '',
      '[[apps]]',
      'id = "app-id"',
      'key = "app-key"',
      'secret = "app-secret"',
      '',
      '[[apps.webhooks]]',
      `url = "http://${HOST}:${backend.port}/pusher/webhooks"`,
      `event_types = ${JSON.stringify(EVENT_TYPES)}`,
      '',
    ].join('\n');
    server = await startServer({ shards: 2, config });
    sdk = makeSdk(server);
    wrongSdk = new PusherServer({ appId: APP_ID, key: APP_KEY, secret: 'wrong', host: HOST, port: server.port, useTLS: false });
  }, { timeout: 15_000 });

  afterEach(() => disconnectAll());

  after(async () => {
    disconnectAll();
    if (server) await server.stop();
    if (backend) await backend.close();
  });

  /**
   * Validates one recorded request with the SDK and returns its events, each
   * with the request's arrival time. Fails with the headers, body and what the
   * SDK said when the SDK rejects it.
   */
  function validated(req) {
    const webhook = sdk.webhook({ headers: req.headers, rawBody: req.body });
    const said = () =>
      `SDK: isContentTypeValid=${webhook.isContentTypeValid()} isBodyValid=${webhook.isBodyValid()} ` +
      `isValid=${webhook.isValid()}; headers: ${JSON.stringify(req.headers)}; body: ${req.body}`;
    assert.equal(req.method, 'POST', said());
    assert.equal(req.url, '/pusher/webhooks', said());
    assert.equal(webhook.isContentTypeValid(), true, said());
    assert.equal(webhook.isBodyValid(), true, said());
    assert.equal(webhook.isValid(), true, said());

    // The check can fail: another secret, or a body changed after signing.
    const wrong = wrongSdk.webhook({ headers: req.headers, rawBody: req.body });
    assert.equal(wrong.isValid(), false, `a validator with secret "wrong" accepted: ${said()}`);
    const tampered = sdk.webhook({ headers: req.headers, rawBody: req.body.replace(/}$/, ',"x":1}') });
    assert.equal(tampered.isValid(), false, `a tampered body was accepted: ${said()}`);

    const time = webhook.getTime();
    assert.ok(time instanceof Date, said());
    assert.ok(
      Math.abs(time.getTime() - req.at) < TIME_SKEW_MS,
      `getTime() ${time.toISOString()} is not close to the arrival ${new Date(req.at).toISOString()}: ${said()}`
    );
    const events = webhook.getEvents();
    assert.ok(Array.isArray(events) && events.length >= 1, said());
    return events.map((e) => ({ ...e, at: req.at }));
  }

  /** All events for `channel` in the requests so far (validating each request that carries one). */
  function eventsFor(channel) {
    const out = [];
    for (const req of backend.requests) {
      if (!req.body.includes(JSON.stringify(channel))) continue;
      for (const e of validated(req)) if (e.channel === channel) out.push(e);
    }
    return out;
  }

  /** Waits until the events of `channel` satisfy pred, returns them. */
  async function waitForEvents(channel, pred, what, ms = HOOK_WAIT_MS) {
    const names = (reqs) => {
      const list = [];
      for (const r of reqs) {
        let d;
        try {
          d = JSON.parse(r.body);
        } catch (_) {
          continue;
        }
        for (const e of (d && d.events) || []) if (e.channel === channel) list.push(e);
      }
      return list;
    };
    await backend.waitUntil((reqs) => pred(names(reqs)), `${what} on "${channel}"`, ms);
    return eventsFor(channel);
  }

  const has = (name, extra = {}) => (list) =>
    list.some((e) => e.name === name && Object.entries(extra).every(([k, v]) => e[k] === v));

  function authClient(auth = {}) {
    const client = makeAuthClient(server, { sdk, ...auth });
    return waitForConnected(client).then(() => client);
  }

  test('1. public channel: channel_occupied on subscribe, channel_vacated ~300 ms after unsubscribe', { timeout: TEST_MS }, async () => {
    const client = await authClient();
    const name = uniqueChannel('public-hooks');
    await subscribe(client, name);
    let events = await waitForEvents(name, has('channel_occupied'), 'channel_occupied');
    assert.deepEqual(events.map((e) => e.name), ['channel_occupied']);
    assert.deepEqual(Object.keys(events[0]).sort(), ['at', 'channel', 'name']);

    await sleep(100);
    const unsubscribedAt = Date.now();
    client.unsubscribe(name);
    events = await waitForEvents(name, has('channel_vacated'), 'channel_vacated');
    assert.deepEqual(events.map((e) => e.name), ['channel_occupied', 'channel_vacated']);
    const delay = events[1].at - unsubscribedAt;
    assert.ok(
      delay >= VACATE_DELAY_MS - 50 && delay < VACATE_DELAY_MS + 2500,
      `channel_vacated arrived ${delay} ms after the unsubscribe (vacate_delay_ms = ${VACATE_DELAY_MS})`
    );
  });

  test('2. presence channel: member_added / member_removed with user_id', { timeout: TEST_MS }, async () => {
    const name = uniqueChannel('presence-hooks');
    const alice = await authClient({ presence: { user_id: 'alice', user_info: { name: 'Alice' } } });
    const bob = await authClient({ presence: { user_id: 'bob', user_info: { name: 'Bob' } } });
    await subscribe(alice, name);
    await subscribe(bob, name);
    // Webhooks of different kinds may arrive in any order (over three nodes, channel_occupied
    // can come after the member_added ones): wait for all three, then check there are no more.
    let events = await waitForEvents(
      name,
      (l) =>
        has('member_added', { user_id: 'alice' })(l) &&
        has('member_added', { user_id: 'bob' })(l) &&
        has('channel_occupied')(l),
      'channel_occupied and member_added for alice and bob'
    );
    const sorted = events.map((e) => `${e.name}:${e.user_id ?? ''}`).sort();
    assert.deepEqual(sorted, ['channel_occupied:', 'member_added:alice', 'member_added:bob']);
    assert.ok(
      events.findIndex((e) => e.user_id === 'alice') < events.findIndex((e) => e.user_id === 'bob'),
      `member_added for bob came before alice's: ${JSON.stringify(events)}`
    );

    const leftAt = Date.now();
    disconnectClient(bob);
    events = await waitForEvents(name, has('member_removed', { user_id: 'bob' }), 'member_removed for bob');
    const removed = events.filter((e) => e.name === 'member_removed');
    assert.deepEqual(removed.map((e) => e.user_id), ['bob']);
    assert.ok(removed[0].at - leftAt >= VACATE_DELAY_MS - 50, `member_removed came ${removed[0].at - leftAt} ms after bob left`);
    assert.ok(!events.some((e) => e.name === 'channel_vacated'), `channel_vacated while alice is still there: ${JSON.stringify(events)}`);

    alice.unsubscribe(name);
    events = await waitForEvents(
      name,
      (l) => has('member_removed', { user_id: 'alice' })(l) && has('channel_vacated')(l),
      'member_removed for alice and channel_vacated'
    );
    assert.deepEqual(
      events.map((e) => `${e.name}:${e.user_id ?? ''}`).sort(),
      ['channel_occupied:', 'channel_vacated:', 'member_added:alice', 'member_added:bob', 'member_removed:alice', 'member_removed:bob']
    );
  });

  test('3. private channel: client_event with event, data and socket_id', { timeout: TEST_MS }, async () => {
    const [a, b] = await Promise.all([authClient(), authClient()]);
    const name = uniqueChannel('private-hooks');
    const [chA, chB] = await Promise.all([subscribe(a, name), subscribe(b, name)]);
    await waitForEvents(name, has('channel_occupied'), 'channel_occupied');
    const recB = recordEvents(chB, 'client-note');
    const sent = { text: 'hello', n: 42, nested: { ok: true } };
    assert.equal(chA.trigger('client-note', sent), true, 'pusher-js refused to send the client event');
    await recB.waitFor(1);

    const events = await waitForEvents(name, has('client_event'), 'client_event');
    const ce = events.filter((e) => e.name === 'client_event');
    assert.equal(ce.length, 1, JSON.stringify(events));
    assert.equal(ce[0].event, 'client-note');
    assert.equal(ce[0].channel, name);
    assert.equal(ce[0].socket_id, a.connection.socket_id);
    assert.equal(typeof ce[0].data, 'string', `data should be a JSON string: ${JSON.stringify(ce[0])}`);
    assert.deepEqual(JSON.parse(ce[0].data), sent);
    assert.equal(ce[0].user_id, undefined, 'user_id on a private-channel client_event');
  });

  test('4. every webhook request received passes the SDK validator (and fails with a wrong secret)', { timeout: TEST_MS }, async () => {
    assert.ok(backend.requests.length >= 10, `only ${backend.requests.length} webhook requests received`);
    const names = new Set();
    for (const req of backend.requests) for (const e of validated(req)) names.add(e.name);
    assert.deepEqual([...names].sort(), [...EVENT_TYPES].sort());
    // The SDK compares Content-Type exactly: a charset would make it reject the request.
    const first = backend.requests[0];
    const withCharset = { ...first.headers, 'content-type': 'application/json; charset=utf-8' };
    assert.equal(sdk.webhook({ headers: withCharset, rawBody: first.body }).isValid(), false);
  });
});
