// What `npm start` runs for Temporal: the dev server on 127.0.0.1 with a database file, the UI, nestor's search attributes.
// needs: temporal
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { Connection } from '@temporalio/client';
import { request } from 'undici';
import { loadConfig } from '../../src/config';
import { startDevServer } from '../../src/dev/server';
import { eventually } from '../helpers/eventually';
import { freePort } from '../helpers/net';

describe('the dev server behind npm start', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'nestor-dev-'));
  after(() => rmSync(dataDir, { recursive: true, force: true }));

  test('a server that fails to start is reported with the end of its log (its data folder may be gone later)', async () => {
    // A stand-in binary that fails as a real one does when its port is taken: it writes why and exits.
    const bin = join(dataDir, 'failing-temporal');
    writeFileSync(bin, '#!/bin/sh\necho "listen tcp 127.0.0.1:7233: bind: address already in use" >&2\nexit 3\n');
    chmodSync(bin, 0o755);
    const c = { ...loadConfig(), dataDir, temporalBin: bin, temporalPort: await freePort(), uiPort: await freePort() };
    await assert.rejects(startDevServer(c), (err: Error) => {
      assert.match(err.message, /exited with code 3/);
      assert.match(err.message, /bind: address already in use/);
      return true;
    });
  });

  test('keeps its database in the data folder, registers the search attributes, serves the UI, and stops cleanly', async () => {
    const c = { ...loadConfig(), dataDir, temporalPort: await freePort(), uiPort: await freePort() };
    const server = await startDevServer(c);
    try {
      assert.equal(server.address, `127.0.0.1:${c.temporalPort}`);
      assert.ok(existsSync(join(dataDir, 'temporal.db')), 'a persistent database file');
      // SQLite's header says the journal (bytes 18-19: 2 for a write-ahead log, 1 for the rollback journal).
      const header = readFileSync(join(dataDir, 'temporal.db')).subarray(18, 20);
      assert.deepEqual([...header], [2, 2], 'the database journals to a write-ahead log');
      const conn = await Connection.connect({ address: server.address });
      const { customAttributes } = await conn.operatorService.listSearchAttributes({ namespace: 'default' });
      await conn.close();
      for (const name of ['ConversationId', 'UserId', 'ConversationStatus']) {
        assert.ok(customAttributes?.[name] !== undefined, `${name} is registered`);
      }
      const ui = await request(server.uiUrl);
      await ui.body.dump();
      assert.equal(ui.statusCode, 200);
    } finally {
      await server.stop();
    }
    assert.notEqual(server.process.exitCode ?? server.process.signalCode, null, 'the server process is gone');
  });
});

describe('`nestor dev`: the whole service with encryption, the codec server wired into the UI, and metrics', () => {
  const CLI = require.resolve('../../src/cli');

  test('without keys it generates a development key and says so; the UI is pointed at the codec server; Ctrl-C stops all', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'nestor-dev-'));
    const [temporalPort, uiPort, codecPort, metricsPort] = [
      await freePort(),
      await freePort(),
      await freePort(),
      await freePort(),
    ];
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      NESTOR_DATA_DIR: dataDir,
      NESTOR_TEMPORAL_PORT: String(temporalPort),
      NESTOR_UI_PORT: String(uiPort),
      NESTOR_CODEC_PORT: String(codecPort),
      NESTOR_METRICS_PORT: String(metricsPort),
    };
    delete env.NESTOR_ENCRYPTION_KEYS;
    delete env.TEMPORAL_ADDRESS;
    const child = spawn('node', [CLI, 'dev'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout!.on('data', (d) => (out += d));
    child.stderr!.on('data', (d) => (err += d));
    const exited = once(child, 'exit');
    try {
      await eventually(async () => assert.match(out, /nestor is running/), 60_000);
      assert.match(err, /development key generated now into .*encryption-keys/);
      assert.ok(existsSync(join(dataDir, 'encryption-keys')));
      assert.match(out, new RegExp(`Codec server .*http://127\\.0\\.0\\.1:${codecPort}`));
      // The UI's own settings name the codec endpoint, so the browser decodes through it.
      const settings = await request(`http://127.0.0.1:${uiPort}/api/v1/settings`);
      const body = (await settings.body.json()) as { Codec?: { Endpoint?: string } };
      assert.equal(body.Codec?.Endpoint, `http://127.0.0.1:${codecPort}`);
      const pre = await request(`http://127.0.0.1:${codecPort}/decode`, {
        method: 'OPTIONS',
        headers: { origin: `http://127.0.0.1:${uiPort}` },
      });
      assert.equal(pre.statusCode, 204);
      assert.equal(pre.headers['access-control-allow-origin'], `http://127.0.0.1:${uiPort}`);
      await pre.body.dump();
      const metrics = await request(`http://127.0.0.1:${metricsPort}/metrics`);
      assert.equal(metrics.statusCode, 200);
      assert.match(await metrics.body.text(), /temporal_/);
    } finally {
      child.kill('SIGINT');
    }
    const [code] = await exited;
    assert.equal(code, 0, err);
    assert.match(out, /nestor stopped/);
    await assert.rejects(
      request(`http://127.0.0.1:${codecPort}/decode`, { method: 'OPTIONS' }),
      'the codec server is gone',
    );
    rmSync(dataDir, { recursive: true, force: true });
  });

  test('NESTOR_REQUIRE_ENCRYPTION=true without keys: dev, worker, the codec server and client commands refuse (exit 2)', async () => {
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      NESTOR_REQUIRE_ENCRYPTION: 'true',
      NESTOR_DATA_DIR: mkdtempSync(join(tmpdir(), 'nestor-dev-')),
    };
    delete env.NESTOR_ENCRYPTION_KEYS;
    for (const args of [['dev'], ['worker'], ['codec-server'], ['status', 'any-conversation']]) {
      const cmd = args.join(' ');
      const child = spawn('node', [CLI, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
      let err = '';
      child.stderr!.on('data', (d) => (err += d));
      const [code] = await once(child, 'exit');
      assert.equal(code, 2, `${cmd}: ${err}`);
      assert.match(err, /NESTOR_REQUIRE_ENCRYPTION=true but NESTOR_ENCRYPTION_KEYS is not set/);
      assert.ok(!existsSync(join(env.NESTOR_DATA_DIR!, 'encryption-keys')), 'no development key was made');
    }
  });
});
