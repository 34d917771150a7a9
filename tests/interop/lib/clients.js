'use strict';
// pusher-js clients that authorize channels (and sign in) through the real
// `pusher` server SDK in-process (customHandler, no HTTP auth endpoint), plus
// shard placement and a few more waits with their own timeouts.

const { makeClient } = require('./server');
const { WAIT_MS, waitForConnected, clientInfo, makeRecorder } = require('./helpers');

/** The shard of a connected client: socket_id "<a>.<b>", shard = b % shards. */
function shardOf(client, shards = 2) {
  const id = String(client.connection.socket_id);
  const parts = id.split('.');
  if (parts.length !== 2) throw new Error(`unexpected socket_id format: ${id}`);
  return Number(BigInt(parts[1]) % BigInt(shards));
}

/**
 * A pusher-js client whose channel authorizer (and user authenticator) call the
 * SDK. `auth` is a mutable holder read at every authorization:
 *   auth.sdk       the SDK instance that signs (can be swapped later),
 *   auth.presence  {user_id, user_info} for presence channels,
 *   auth.user      user data for signin ({id, ...}).
 * Every authorization request is logged in client.__authLog.
 */
function makeAuthClient(server, auth, opts = {}) {
  const log = [];
  const client = makeClient(server, {
    channelAuthorization: {
      customHandler: ({ socketId, channelName }, cb) => {
        try {
          const res = auth.sdk.authorizeChannel(socketId, channelName, auth.presence);
          // a copy: pusher-js deletes shared_secret from the object it is given
          log.push({ kind: 'channel', socketId, channelName, res: { ...res } });
          cb(null, res);
        } catch (e) {
          log.push({ kind: 'channel', socketId, channelName, error: String(e) });
          cb(e, null);
        }
      },
    },
    userAuthentication: {
      customHandler: ({ socketId }, cb) => {
        try {
          const res = auth.sdk.authenticateUser(socketId, auth.user);
          log.push({ kind: 'user', socketId, res: { ...res } });
          cb(null, res);
        } catch (e) {
          log.push({ kind: 'user', socketId, error: String(e) });
          cb(e, null);
        }
      },
    },
    ...opts,
  });
  client.__auth = auth;
  client.__authLog = log;
  return client;
}

/**
 * Connects clients made by `factory()` until one lands on `shard`; the others
 * are disconnected. Fails after `maxTries` connections.
 */
async function connectOnShard(factory, shard, { shards = 2, maxTries = 40, disconnect } = {}) {
  const seen = [];
  for (let i = 0; i < maxTries; i++) {
    const client = factory();
    await waitForConnected(client);
    const s = shardOf(client, shards);
    seen.push(`${client.connection.socket_id}->${s}`);
    if (s === shard) return client;
    disconnect(client);
  }
  throw new Error(`no connection landed on shard ${shard} in ${maxTries} tries: ${seen.join(', ')}`);
}

/** Records every connection-level 'error' pusher-js emits (pusher:error frames and close errors). */
function recordConnectionErrors(client) {
  const rec = makeRecorder('connection error(s)');
  client.connection.bind('error', (e) => {
    let copy;
    try {
      copy = JSON.parse(
        JSON.stringify(e, (k, v) => (k === 'target' || k === 'currentTarget' ? undefined : v))
      );
    } catch (_) {
      copy = { unserializable: String(e) };
    }
    rec.push(copy);
  });
  return rec;
}

/** Records every message (including pusher:* / pusher_internal:*) reaching the connection. */
function recordAllFrames(client) {
  const rec = makeRecorder('frame(s)');
  client.connection.bind('message', (m) => rec.push({ event: m.event, channel: m.channel, data: m.data, user_id: m.user_id }));
  return rec;
}

/** Records connection state changes ("a -> b"). */
function recordStates(client) {
  const rec = makeRecorder('state change(s)');
  client.connection.bind('state_change', ({ previous, current }) => rec.push(`${previous} -> ${current}`));
  return rec;
}

/** Resolves once the connection leaves "connected" (or is not connected already). */
function waitForNotConnected(client, ms = WAIT_MS) {
  return new Promise((resolve, reject) => {
    if (client.connection.state !== 'connected') return resolve(client.connection.state);
    const onChange = ({ current }) => {
      if (current !== 'connected') {
        clearTimeout(timer);
        client.connection.unbind('state_change', onChange);
        resolve(current);
      }
    };
    const timer = setTimeout(() => {
      client.connection.unbind('state_change', onChange);
      reject(new Error(`timed out after ${ms} ms: connection still "connected" (${clientInfo(client)})`));
    }, ms);
    client.connection.bind('state_change', onChange);
  });
}

/**
 * Waits for pusher:signin_success and then for the subscription_succeeded of
 * the #server-to-user-<id> channel pusher-js subscribes after it.
 */
async function waitForSignin(client, ms = WAIT_MS) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    const ch = client.user.serverToUserChannel;
    if (client.user.user_data && ch && ch.subscribed) return client.user.user_data;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(
    `timed out after ${ms} ms waiting for pusher:signin_success and the #server-to-user subscription (${clientInfo(client)}; ` +
      `auth log: ${JSON.stringify(client.__authLog || [])})`
  );
}

/** Records the body of an SDK Response as parsed JSON (or raw text when not JSON). */
async function jsonBody(res) {
  const text = await res.text();
  try {
    return JSON.parse(text);
  } catch (_) {
    throw new Error(`response body (HTTP ${res.status}) is not JSON: ${text}`);
  }
}

/** A promise that rejects after ms, for racing an SDK call. */
function withTimeout(promise, ms, what) {
  let timer;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
    }),
  ]);
}

module.exports = {
  shardOf,
  makeAuthClient,
  connectOnShard,
  recordConnectionErrors,
  recordAllFrames,
  recordStates,
  waitForNotConnected,
  waitForSignin,
  jsonBody,
  withTimeout,
};
