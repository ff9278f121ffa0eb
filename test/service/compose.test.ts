// docker-compose.yml parses and names the services and variables the docs describe; docs/configuration.md documents
// every variable.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { parse } from 'yaml';
import { EnvSchema, PROJECT_ROOT, loadConfig } from '../../src/config';
import { generateKeySpec } from '../../src/codec/encryption';

const compose = parse(readFileSync(join(PROJECT_ROOT, 'docker-compose.yml'), 'utf8'));
const configDoc = readFileSync(join(PROJECT_ROOT, 'docs/configuration.md'), 'utf8');

describe('docker-compose.yml', () => {
  test('has the Temporal dev server, the worker and the emulator image build', () => {
    assert.deepEqual(Object.keys(compose.services).sort(), ['codec', 'emulator', 'temporal', 'worker']);
  });

  test('the dev server registers nestor’s search attributes and keeps its database', () => {
    const cmd: string[] = compose.services.temporal.command;
    for (const sa of ['ConversationId', 'UserId', 'ConversationStatus'])
      assert.ok(cmd.includes(`--search-attribute=${sa}=Keyword`), sa);
    assert.ok(cmd.some((a) => a.startsWith('--db-filename=')));
    assert.ok(
      compose.services.temporal.ports.every((p: string) => p.startsWith('127.0.0.1:')),
      'ports on loopback only',
    );
  });

  test('the worker has the Docker socket and only variables the configuration knows, each documented', () => {
    const w = compose.services.worker;
    assert.ok(w.volumes.includes('/var/run/docker.sock:/var/run/docker.sock'));
    const known = Object.keys(EnvSchema.shape);
    for (const name of Object.keys(w.environment)) {
      assert.ok(known.includes(name), `${name} is not a configuration variable`);
      assert.ok(configDoc.includes(`\`${name}\``), `${name} is not in docs/configuration.md`);
    }
    // Compose fills ${VAR:?…} from the shell; a real key stands in for it here.
    const filled = (env: Record<string, string>) =>
      Object.fromEntries(
        Object.entries(env).map(([k, v]) => [k, String(v).startsWith('${') ? generateKeySpec('compose') : String(v)]),
      );
    assert.doesNotThrow(() => loadConfig(filled(w.environment)), 'the compose environment parses');
    assert.equal(loadConfig(filled(w.environment)).requireEncryption, true, 'the worker refuses to run without a key');
    const codec = compose.services.codec;
    assert.deepEqual(codec.command, ['codec-server']);
    assert.equal(
      codec.environment.NESTOR_ENCRYPTION_KEYS,
      w.environment.NESTOR_ENCRYPTION_KEYS,
      'the codec server has the worker’s keys',
    );
    assert.ok(
      compose.services.temporal.command.includes(
        `--ui-codec-endpoint=http://127.0.0.1:${codec.environment.NESTOR_CODEC_PORT}`,
      ),
    );
    assert.equal(compose.services.emulator.image, w.environment.NESTOR_RUNTIME_IMAGE);
  });
});

describe('docs/configuration.md', () => {
  test('documents every configuration variable', () => {
    for (const name of Object.keys(EnvSchema.shape))
      assert.ok(configDoc.includes(`\`${name}\``), `${name} missing from docs/configuration.md`);
  });

  test('a bad variable is refused with its name', () => {
    assert.throws(() => loadConfig({ NESTOR_TEMPORAL_PORT: 'abc' }), /NESTOR_TEMPORAL_PORT: /);
    assert.throws(
      () => loadConfig({ NESTOR_MODEL_CAPABILITIES: '{"m": {"vision": "yes"}}' }),
      /NESTOR_MODEL_CAPABILITIES\.m\.vision/,
    );
    assert.throws(() => loadConfig({ NESTOR_WORKFLOW_CACHE_SIZE: '-1' }), /NESTOR_WORKFLOW_CACHE_SIZE: /);
  });

  test("the workflow cache is the SDK's unless bounded", () => {
    assert.equal(loadConfig({}).workflowCacheSize, undefined);
    assert.equal(loadConfig({ NESTOR_WORKFLOW_CACHE_SIZE: '2000' }).workflowCacheSize, 2000);
  });
});
