// How nestor reaches Temporal from the configuration: TLS and API key under Temporal's own variable names.
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadConfig } from '../../src/config';
import { ConfigError } from '../../src/errors';
import {
  connectFailure,
  describeTemporalAuth,
  temporalConnectionOptions,
  temporalRefusal,
} from '../../src/temporal-connection';

const dir = mkdtempSync(join(tmpdir(), 'nestor-tls-'));
const pem = (name: string) => {
  const path = join(dir, name);
  writeFileSync(path, `-----BEGIN ${name}-----\n`);
  return path;
};

test('plain by default; an API key implies TLS and is never described', () => {
  const plain = loadConfig({ TEMPORAL_ADDRESS: 'temporal.internal:7233' });
  assert.deepEqual(temporalConnectionOptions(plain), { address: 'temporal.internal:7233' });
  assert.equal(describeTemporalAuth(plain), 'plain gRPC (no TLS)');

  const cloud = loadConfig({ TEMPORAL_ADDRESS: 'ns.acct.tmprl.cloud:7233', TEMPORAL_API_KEY: 'secret-api-key-123' });
  assert.deepEqual(temporalConnectionOptions(cloud), {
    address: 'ns.acct.tmprl.cloud:7233',
    apiKey: 'secret-api-key-123',
    tls: {},
  });
  assert.equal(describeTemporalAuth(cloud), 'TLS, API key');
  assert.doesNotMatch(describeTemporalAuth(cloud), /secret/);
});

test('mTLS: certificate pair, CA and server name read from their files', () => {
  const c = loadConfig({
    TEMPORAL_TLS_CLIENT_CERT_PATH: pem('CERT'),
    TEMPORAL_TLS_CLIENT_KEY_PATH: pem('KEY'),
    TEMPORAL_TLS_SERVER_CA_CERT_PATH: pem('CA'),
    TEMPORAL_TLS_SERVER_NAME: 'frontend.temporal',
  });
  const o = temporalConnectionOptions(c);
  assert.equal(o.tls?.serverNameOverride, 'frontend.temporal');
  assert.match(String(o.tls?.clientCertPair?.crt), /BEGIN CERT/);
  assert.match(String(o.tls?.clientCertPair?.key), /BEGIN KEY/);
  assert.match(String(o.tls?.serverRootCACertificate), /BEGIN CA/);
  assert.equal(describeTemporalAuth(c), 'TLS, client certificate, own CA');
  assert.deepEqual(temporalConnectionOptions(loadConfig({ TEMPORAL_TLS: 'true' })).tls, {});
});

test('a certificate without its key, an unreadable file or a bad TEMPORAL_TLS are refused naming the variable', () => {
  assert.throws(
    () => loadConfig({ TEMPORAL_TLS_CLIENT_CERT_PATH: pem('CERT') }),
    (e: Error) => e instanceof ConfigError && /TEMPORAL_TLS_CLIENT_KEY_PATH: set both/.test(e.message),
  );
  const missing = loadConfig({ TEMPORAL_TLS_SERVER_CA_CERT_PATH: join(dir, 'nope.pem') });
  assert.throws(
    () => temporalConnectionOptions(missing),
    (e: Error) =>
      e instanceof ConfigError &&
      /^TEMPORAL_TLS_SERVER_CA_CERT_PATH: cannot read .*nope\.pem \(ENOENT\)$/.test(e.message),
  );
  assert.throws(() => loadConfig({ TEMPORAL_TLS: 'yes' }), /TEMPORAL_TLS: expected 'true' or 'false'/);
});

test("the server's refusal is found in either SDK's error, and a failed connection says what to check", () => {
  // The client's gRPC error (a code) wrapped by the SDK; the worker's native error (only words).
  const grpc = Object.assign(new Error('7 PERMISSION_DENIED: Request unauthorized.'), {
    code: 7,
    details: 'Request unauthorized.',
  });
  assert.equal(
    temporalRefusal(new Error('Failed to start Workflow', { cause: grpc })),
    'PERMISSION_DENIED: Request unauthorized.',
  );
  const native = new Error(
    `Failed to call GetSystemInfo: code: 'The request does not have valid authentication credentials', message: "Jwt verification error"`,
  );
  assert.equal(temporalRefusal(native), 'UNAUTHENTICATED: Jwt verification error');
  assert.equal(temporalRefusal(Object.assign(new Error('unavailable'), { code: 14 })), undefined);

  const withKey = { address: 'temporal.internal:7233', apiKey: 'secret-api-key-123', tls: {} };
  const refused = connectFailure(native, withKey);
  assert.match(
    refused,
    /^Temporal at temporal\.internal:7233 refused this client \(UNAUTHENTICATED: .*check TEMPORAL_API_KEY/,
  );
  assert.doesNotMatch(refused, /secret-api-key/);
  assert.match(
    connectFailure(new Error('deadline exceeded'), { address: 'a:7233', tls: {} }),
    /over TLS \(deadline exceeded\); check .*TEMPORAL_TLS_SERVER_CA_CERT_PATH/,
  );
  assert.match(
    connectFailure(new Error('refused'), { address: 'a:7233' }),
    /if the server requires TLS, set TEMPORAL_TLS=true/,
  );
});
