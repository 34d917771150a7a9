'use strict';
// Small promise helpers around pusher-js, each with its own timeout so that a
// misbehaving server makes a test fail instead of hang.

const WAIT_MS = 3000;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

let counter = 0;
/** A channel name unique within this process. */
function uniqueChannel(prefix = 'ch') {
  counter += 1;
  return `${prefix}-${process.pid}-${Date.now()}-${counter}`;
}

function clientInfo(client) {
  const errs = (client.__errors || []).map((e) => {
    try {
      return JSON.stringify(e, (k, v) => (k === 'target' || k === 'currentTarget' ? undefined : v));
    } catch (_) {
      return String(e);
    }
  });
  return (
    `state "${client.connection.state}", socket_id ${client.connection.socket_id}` +
    (errs.length ? `, connection errors: ${errs.join('; ')}` : '')
  );
}

/** Resolves when the client reaches state "connected"; rejects on failure or timeout. */
function waitForConnected(client, ms = WAIT_MS) {
  return new Promise((resolve, reject) => {
    if (client.connection.state === 'connected') return resolve();
    const history = [client.connection.state];
    const cleanup = () => {
      clearTimeout(timer);
      client.connection.unbind('state_change', onChange);
    };
    const onChange = ({ current }) => {
      history.push(current);
      if (current === 'connected') {
        cleanup();
        resolve();
      } else if (current === 'failed') {
        cleanup();
        reject(new Error(`connection failed (states: ${history.join(' -> ')}; ${clientInfo(client)})`));
      }
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(
        new Error(
          `timed out after ${ms} ms waiting for state "connected" ` +
            `(states: ${history.join(' -> ')}; ${clientInfo(client)})`
        )
      );
    }, ms);
    client.connection.bind('state_change', onChange);
  });
}

/** Subscribes and resolves with the channel once pusher:subscription_succeeded fires. */
function subscribe(client, name, ms = WAIT_MS) {
  return new Promise((resolve, reject) => {
    const channel = client.subscribe(name);
    if (channel.subscribed) return resolve(channel);
    const cleanup = () => {
      clearTimeout(timer);
      channel.unbind('pusher:subscription_succeeded', onOk);
      channel.unbind('pusher:subscription_error', onErr);
    };
    const onOk = () => {
      cleanup();
      resolve(channel);
    };
    const onErr = (e) => {
      cleanup();
      reject(new Error(`pusher:subscription_error on "${name}": ${JSON.stringify(e)}`));
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(
        new Error(
          `timed out after ${ms} ms waiting for pusher:subscription_succeeded on "${name}" (${clientInfo(client)})`
        )
      );
    }, ms);
    channel.bind('pusher:subscription_succeeded', onOk);
    channel.bind('pusher:subscription_error', onErr);
  });
}

/**
 * A list of items that grows through `push`, with `waitFor(n)` resolving once
 * at least n items are there.
 */
function makeRecorder(label) {
  const received = [];
  let waiters = [];
  return {
    received,
    push(item) {
      received.push(item);
      const ready = waiters.filter((w) => received.length >= w.n);
      waiters = waiters.filter((w) => received.length < w.n);
      for (const w of ready) w.done();
    },
    waitFor(n = 1, ms = WAIT_MS) {
      if (received.length >= n) return Promise.resolve(received);
      return new Promise((resolve, reject) => {
        const w = {
          n,
          done: () => {
            clearTimeout(timer);
            resolve(received);
          },
        };
        const timer = setTimeout(() => {
          waiters = waiters.filter((x) => x !== w);
          reject(
            new Error(
              `timed out after ${ms} ms waiting for ${n} ${label}; got ${received.length}: ` +
                JSON.stringify(received)
            )
          );
        }, ms);
        waiters.push(w);
      });
    },
  };
}

/** Records the data of every `eventName` event pusher-js delivers on a channel. */
function recordEvents(channel, eventName) {
  const rec = makeRecorder(`"${eventName}" event(s) on "${channel.name}"`);
  channel.bind(eventName, (data) => rec.push(data));
  return rec;
}

/**
 * Records every non-protocol message ({event, channel, data}) that reaches the
 * client's connection, whether or not pusher-js has the channel subscribed.
 */
function recordRaw(client) {
  const rec = makeRecorder('raw message(s)');
  client.connection.bind('message', (m) => {
    if (typeof m.event === 'string' && m.event.startsWith('pusher')) return;
    rec.push({ event: m.event, channel: m.channel, data: m.data });
  });
  return rec;
}

module.exports = {
  WAIT_MS,
  sleep,
  uniqueChannel,
  clientInfo,
  waitForConnected,
  subscribe,
  makeRecorder,
  recordEvents,
  recordRaw,
};
