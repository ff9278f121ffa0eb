// What `npm start` runs for Temporal: the dev server on 127.0.0.1 with a database file, the UI, nestor's search attributes.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { Connection } from '@temporalio/client';
import { request } from 'undici';
import { loadConfig } from '../src/config';
import { startDevServer } from '../src/dev-server';

async function freePort(): Promise<number> {
  const s = createServer().listen(0, '127.0.0.1');
  await new Promise((r) => s.once('listening', r));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

describe('the dev server behind npm start', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'nestor-dev-'));
  after(() => rmSync(dataDir, { recursive: true, force: true }));

  test('keeps its database in the data folder, registers the search attributes, serves the UI, and stops cleanly', async () => {
    const c = { ...loadConfig(), dataDir, temporalPort: await freePort(), uiPort: await freePort() };
    const server = await startDevServer(c);
    try {
      assert.equal(server.address, `127.0.0.1:${c.temporalPort}`);
      assert.ok(existsSync(join(dataDir, 'temporal.db')), 'a persistent database file');
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
