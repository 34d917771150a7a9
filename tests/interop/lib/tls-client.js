'use strict';
// Run by test/tls.test.js in its own process, so that NODE_EXTRA_CA_CERTS (read when a
// process starts) makes Node trust the test CA: pusher-js's Node build opens its WebSocket
// with no TLS options of its own, so this is how it is told to trust a private CA.
// Connects pusher-js over wss (forceTLS) to PUSHGATE_TLS_PORT, subscribes, publishes with the
// `pusher` SDK over https (useTLS), and prints one JSON line with what it saw. Exits 0 when
// the event arrived, 1 otherwise (10 s limit).

const PusherClient = require('pusher-js');
const PusherServer = require('pusher');

const HOST = '127.0.0.1';
const port = Number(process.env.PUSHGATE_TLS_PORT);
const LIMIT_MS = 10_000;

function report(result, code) {
  process.stdout.write(JSON.stringify(result) + '\n');
  process.exit(code);
}

const client = new PusherClient('app-key', {
  cluster: 'mt1',
  wsHost: HOST,
  wsPort: port,
  wssPort: port,
  forceTLS: true,
  enabledTransports: ['ws'],
  disableStats: true,
});
const sdk = new PusherServer({
  appId: 'app-id',
  key: 'app-key',
  secret: 'app-secret',
  host: HOST,
  port,
  useTLS: true,
  timeout: 3000,
});

const states = [];
const errors = [];
client.connection.bind('state_change', ({ current }) => states.push(current));
client.connection.bind('error', (e) => errors.push(JSON.stringify(e && (e.error || e))));
setTimeout(() => report({ ok: false, why: 'timed out', states, errors }, 1), LIMIT_MS).unref();

client.connection.bind('connected', () => {
  const channel = client.subscribe('tls-orders');
  channel.bind('created', (data) => {
    report({ ok: true, data, usingTLS: client.connection.isUsingTLS(), socketId: client.connection.socket_id }, 0);
  });
  channel.bind('pusher:subscription_succeeded', async () => {
    try {
      const response = await sdk.trigger('tls-orders', 'created', { id: 7, over: 'tls' });
      if (response.status !== 200) {
        report({ ok: false, why: `trigger answered ${response.status}`, states, errors }, 1);
      }
    } catch (e) {
      report({ ok: false, why: `trigger over https failed: ${e.message}`, states, errors }, 1);
    }
  });
});
