'use strict';
// Starts and stops the pushgate binary, and builds pusher-js clients and
// `pusher` server-SDK instances that point at it.

const { spawn } = require('node:child_process');
const net = require('node:net');
const path = require('node:path');
const fs = require('node:fs');
const os = require('node:os');

const PusherClient = require('pusher-js');
const PusherServer = require('pusher');

const HOST = '127.0.0.1';
const APP_ID = 'app-id';
const APP_KEY = 'app-key';
const APP_SECRET = 'app-secret';

const READY_TIMEOUT_MS = 10_000;
const STOP_TIMEOUT_MS = 5_000;
const MAX_LOG_CHARS = 64 * 1024;

function binaryPath() {
  return process.env.PUSHGATE_BIN
    ? path.resolve(process.env.PUSHGATE_BIN)
    : path.resolve(__dirname, '..', '..', '..', 'target', 'release', 'pushgate');
}

/** Asks the kernel for a free TCP port on 127.0.0.1, then releases it. */
function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, HOST, () => {
      const { port } = srv.address();
      srv.close((err) => (err ? reject(err) : resolve(port)));
    });
  });
}

function tail(s, n = 4000) {
  return s.length > n ? '...' + s.slice(-n) : s;
}

/**
 * Spawns `pushgate --host 127.0.0.1 --port <free> --shards <shards>` and waits
 * for a stdout line containing "listening on".
 * `config` (optional): TOML text written to a temporary file passed as
 * `--config <file>` (the --host/--port/--shards flags still override it; an
 * `[[apps]]` table replaces the default app). The file is removed by stop().
 * Resolves to { host, port, proc, configPath, stop(), stdout(), stderr() }.
 */
async function startServer(options = {}) {
  // TLS takes the whole client port (no plain /metrics to wait on): one node.
  const tls = /^\[tls\]/m.test(options.config || '');
  if (NODES > 1 && !options.single && !tls) return startCluster(options);
  return startNode(options);
}

// INTEROP_NODES=3 runs every file against a cluster: a nats-server and that many nodes linked
// through it; `server.port` is node 0's (the SDKs publish and query there) and makeClient
// spreads pusher-js clients over `server.ports` in turn.
const NODES = Number(process.env.INTEROP_NODES || 1);
const NATS = process.env.NATS_SERVER || '/usr/sbin/nats-server';

function connects(port) {
  return new Promise((resolve) => {
    const s = net.connect(port, HOST, () => {
      s.destroy();
      resolve(true);
    });
    s.on('error', () => resolve(false));
  });
}

/** Polls `check` every 50 ms until it holds; throws after `ms`. */
async function until(check, label, ms = 15_000) {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`not reached within ${ms} ms: ${label}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function clusterNodes(node) {
  const res = await fetch(`http://${HOST}:${node.port}/metrics`);
  const line = (await res.text()).split('\n').find((l) => l.startsWith('pushgate_cluster_nodes{'));
  return line ? Number(line.split(' ').pop()) : 0;
}

async function startCluster({ shards = 2, extraArgs = [], config = '' } = {}) {
  if (!fs.existsSync(NATS)) throw new Error(`INTEROP_NODES=${NODES} needs nats-server at ${NATS}`);
  const natsPort = await freePort();
  const nats = spawn(NATS, ['-a', HOST, '-p', String(natsPort)], { stdio: 'ignore' });
  const nodes = [];
  try {
    await until(() => connects(natsPort), 'nats-server accepts connections');
    for (let i = 0; i < NODES; i++) {
      const section =
        `\n[cluster]\nadapter = "nats"\nservers = ["nats://${HOST}:${natsPort}"]\n` +
        `node = "interop-${i}"\nheartbeat_ms = 200\nnode_timeout_ms = 1500\n`;
      nodes.push(await startNode({ shards, extraArgs, config: config + section }));
    }
    await until(
      async () => (await Promise.all(nodes.map(clusterNodes))).every((n) => n === NODES - 1),
      'the nodes see each other'
    );
  } catch (e) {
    for (const node of nodes) await node.stop();
    nats.kill('SIGKILL');
    throw e;
  }
  return {
    ...nodes[0],
    ports: nodes.map((n) => n.port),
    nodes,
    async stop() {
      const results = [];
      for (const node of nodes) results.push(await node.stop());
      nats.kill('SIGKILL');
      return results[0];
    },
    stdout: () => nodes.map((n) => n.stdout()).join('\n'),
    stderr: () => nodes.map((n) => n.stderr()).join('\n'),
  };
}

async function startNode({ shards = 2, extraArgs = [], config } = {}) {
  const bin = binaryPath();
  if (!fs.existsSync(bin)) {
    throw new Error(
      `pushgate binary not found at ${bin} (set PUSHGATE_BIN to the server binary)`
    );
  }
  let configDir = null;
  let configPath = null;
  if (config !== undefined) {
    configDir = fs.mkdtempSync(path.join(os.tmpdir(), 'pushgate-interop-'));
    configPath = path.join(configDir, 'pushgate.toml');
    fs.writeFileSync(configPath, config);
  }
  const removeConfig = () => {
    if (configDir) fs.rmSync(configDir, { recursive: true, force: true });
    configDir = null;
  };
  const port = await freePort();
  const args = [
    ...(configPath ? ['--config', configPath] : []),
    '--host', HOST, '--port', String(port), '--shards', String(shards),
    ...extraArgs,
  ];
  const proc = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });

  let out = '';
  let err = '';
  proc.stdout.setEncoding('utf8');
  proc.stderr.setEncoding('utf8');
  // Keep draining both pipes for the whole life of the process so that the
  // server can never block on a full pipe.
  proc.stderr.on('data', (d) => {
    err = (err + d).slice(-MAX_LOG_CHARS);
  });

  let exited = null; // { code, signal } once the process has exited
  const exitPromise = new Promise((resolve) => {
    proc.on('exit', (code, signal) => {
      exited = { code, signal };
      resolve(exited);
    });
  });

  const describe = () =>
    `command: ${bin} ${args.join(' ')}\n` +
    (config !== undefined ? `--- config ---\n${config}\n` : '') +
    `--- server stdout ---\n${tail(out) || '(empty)'}\n` +
    `--- server stderr ---\n${tail(err) || '(empty)'}`;

  await new Promise((resolve, reject) => {
    let done = false;
    const finish = (e) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (e) reject(e);
      else resolve();
    };
    const timer = setTimeout(() => {
      finish(
        new Error(
          `pushgate did not print "listening on" within ${READY_TIMEOUT_MS} ms\n${describe()}`
        )
      );
    }, READY_TIMEOUT_MS);
    proc.stdout.on('data', (d) => {
      out = (out + d).slice(-MAX_LOG_CHARS);
      if (out.split('\n').some((line) => line.includes('listening on'))) finish();
    });
    proc.on('error', (e) => finish(new Error(`failed to spawn pushgate: ${e.message}\n${describe()}`)));
    exitPromise.then(({ code, signal }) =>
      finish(
        new Error(
          `pushgate exited before it was ready (code ${code}, signal ${signal})\n${describe()}`
        )
      )
    );
  }).catch(async (e) => {
    if (!exited) {
      proc.kill('SIGKILL');
      await exitPromise;
    }
    removeConfig();
    throw e;
  });

  async function stop() {
    try {
      return await stopProcess();
    } finally {
      removeConfig();
    }
  }

  async function stopProcess() {
    if (exited) return { ...exited, forced: false };
    proc.kill('SIGTERM');
    let timer;
    const timedOut = new Promise((resolve) => {
      timer = setTimeout(() => resolve(null), STOP_TIMEOUT_MS);
    });
    const res = await Promise.race([exitPromise, timedOut]);
    clearTimeout(timer);
    if (res) return { ...res, forced: false };
    proc.kill('SIGKILL');
    return { ...(await exitPromise), forced: true };
  }

  return {
    host: HOST,
    port,
    proc,
    configPath,
    stop,
    stdout: () => out,
    stderr: () => err,
    describe,
    exited: () => exited,
  };
}

// Every client made by makeClient, so that a suite can disconnect them all
// (a connected or reconnecting pusher-js client keeps node alive).
const clients = new Set();

/** A pusher-js (Node build) client connected to the server over plain ws. */
let nextNode = 0;

function makeClient(server, opts = {}) {
  const port = server.ports ? server.ports[nextNode++ % server.ports.length] : server.port;
  const client = new PusherClient(APP_KEY, {
    cluster: 'mt1',
    wsHost: server.host,
    wsPort: port,
    wssPort: port,
    forceTLS: false,
    enabledTransports: ['ws'],
    disableStats: true,
    ...opts,
  });
  // Remember connection errors, for diagnostics in failure messages.
  client.__errors = [];
  client.connection.bind('error', (e) => {
    client.__errors.push(e);
  });
  clients.add(client);
  return client;
}

function disconnectClient(client) {
  try {
    client.disconnect();
  } catch (_) {
    // ignore: disconnect must never make cleanup fail
  }
  clients.delete(client);
}

function disconnectAll() {
  for (const c of [...clients]) disconnectClient(c);
}

/** An instance of the official `pusher` server SDK pointing at the server. */
function makeSdk(server, opts = {}) {
  return new PusherServer({
    appId: APP_ID,
    key: APP_KEY,
    secret: APP_SECRET,
    host: server.host,
    port: server.port,
    useTLS: false,
    timeout: 3000,
    ...opts,
  });
}

/**
 * Registers node:test hooks for a file whose tests share one server: start it before the tests
 * (`onStart(server)` builds the file's SDK instances), disconnect every client after each test,
 * stop the server at the end. Call it inside the file's `describe`.
 */
function serverPerFile(onStart, options = { shards: 2 }) {
  const { before, after, afterEach } = require('node:test');
  let server;
  before(async () => {
    server = await startServer(options);
    onStart(server);
  }, { timeout: 15_000 });
  afterEach(() => disconnectAll());
  after(async () => {
    disconnectAll();
    if (server) await server.stop();
  });
}

module.exports = {
  NATS,
  until,
  connects,
  clusterNodes,
  APP_ID,
  APP_KEY,
  APP_SECRET,
  HOST,
  binaryPath,
  freePort,
  startServer,
  makeClient,
  makeSdk,
  disconnectClient,
  disconnectAll,
  serverPerFile,
};
