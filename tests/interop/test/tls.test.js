'use strict';
// Native TLS: pushgate started with `[tls] cert_file / key_file` (a certificate for 127.0.0.1
// signed by a test CA made here with the openssl command), pusher-js connecting over wss
// (forceTLS) and the `pusher` SDK publishing over https (useTLS), on the same port. The client
// runs in a child process (lib/tls-client.js) with NODE_EXTRA_CA_CERTS pointing at the CA.

const { describe, test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { execFileSync, spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const { startServer } = require('../lib/server');

const CHILD_LIMIT_MS = 20_000;

/** A CA and a server certificate for 127.0.0.1 and localhost, as PEM files in `dir`. */
function makeCertificates(dir) {
  const file = (name) => path.join(dir, name);
  const openssl = (...args) => execFileSync('openssl', args, { stdio: 'pipe', timeout: 30_000 });
  openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', file('ca.key'), '-out', file('ca.pem'), '-days', '2',
    '-subj', '/CN=pushgate interop test CA');
  openssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', file('key.pem'), '-out', file('server.csr'), '-subj', '/CN=127.0.0.1');
  fs.writeFileSync(file('ext.cnf'),
    'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n' +
    'keyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n');
  openssl('x509', '-req', '-in', file('server.csr'), '-CA', file('ca.pem'), '-CAkey', file('ca.key'),
    '-CAcreateserial', '-out', file('cert.pem'), '-days', '2', '-extfile', file('ext.cnf'));
  return { ca: file('ca.pem'), cert: file('cert.pem'), key: file('key.pem') };
}

/** Runs lib/tls-client.js against `port`; resolves with its exit code and last output line. */
function runClient(port, caFile) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [path.join(__dirname, '..', 'lib', 'tls-client.js')], {
      env: { ...process.env, NODE_EXTRA_CA_CERTS: caFile, PUSHGATE_TLS_PORT: String(port) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { err += d; });
    const timer = setTimeout(() => child.kill('SIGKILL'), CHILD_LIMIT_MS);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      const line = out.trim().split('\n').pop() || '';
      let result = null;
      try { result = JSON.parse(line); } catch (_) { /* reported below */ }
      resolve({ code, signal, result, out, err });
    });
  });
}

describe('pushgate over TLS with pusher-js (wss) and the pusher SDK (https)', { timeout: 58_000 }, () => {
  let dir;
  let files;
  let server;

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pushgate-interop-tls-'));
    files = makeCertificates(dir);
    server = await startServer({
      shards: 2,
      config: `[tls]\ncert_file = "${files.cert}"\nkey_file = "${files.key}"\n`,
    });
  }, { timeout: 40_000 });

  after(async () => {
    if (server) await server.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  test('pusher-js receives over wss an event published over https', { timeout: 30_000 }, async () => {
    const run = await runClient(server.port, files.ca);
    assert.equal(run.code, 0,
      `the TLS client failed (exit ${run.code}, signal ${run.signal}): ${run.out}\n${run.err}\n` +
      server.stderr().slice(-2000));
    assert.deepEqual(run.result.data, { id: 7, over: 'tls' });
    assert.equal(run.result.usingTLS, true);
    assert.match(run.result.socketId, /^\d+\.\d+$/);
  });
});
