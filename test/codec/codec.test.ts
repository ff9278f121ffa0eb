// The encryption codec, its keys and the codec server the Temporal UI calls.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { request } from 'undici';
import { defaultPayloadConverter, type Payload } from '@temporalio/common';
import { ConfigError, loadConfig, PROJECT_ROOT } from '../../src/config';
import {
  EncryptionCodec,
  ENCODING_ENCRYPTED,
  METADATA_KEY_ID,
  generateKeySpec,
  parseEncryptionKeys,
} from '../../src/codec/encryption';
import { describeKeys, resolveEncryptionKeys } from '../../src/codec/keys';
import { startCodecServer, type RunningCodecServer } from '../../src/codec/server';
import { codecWithoutToken } from '../../src/dev';

const SECRET = 'sk-ant-this-is-a-secret-llm-key';
const payload = (v: unknown): Payload => defaultPayloadConverter.toPayload(v)!;
const text = (b?: Uint8Array | null) => Buffer.from(b ?? []).toString('utf8');

describe('EncryptionCodec', () => {
  const [k1] = parseEncryptionKeys(generateKeySpec('k1'));
  const [k2] = parseEncryptionKeys(generateKeySpec('k2'));

  test('encrypts the whole payload, names the key, and decodes back to the same payload', async () => {
    const codec = new EncryptionCodec([k1]);
    const original = payload({ settings: { llmApiKey: SECRET } });
    const [sealed] = await codec.encode([original]);
    assert.equal(text(sealed.metadata!.encoding), ENCODING_ENCRYPTED);
    assert.equal(text(sealed.metadata![METADATA_KEY_ID]), 'k1');
    assert.ok(!Buffer.from(sealed.data!).includes(SECRET), 'the secret is not in the ciphertext');
    assert.ok(!Buffer.from(sealed.data!).includes('json/plain'), 'the inner encoding is hidden too');
    const [opened] = await codec.decode([sealed]);
    assert.deepEqual(defaultPayloadConverter.fromPayload(opened), { settings: { llmApiKey: SECRET } });
    const [again] = await codec.encode([original]);
    assert.notDeepEqual(Buffer.from(again.data!), Buffer.from(sealed.data!), 'a fresh IV each time');
  });

  test('rotation: the first key encrypts, every listed key decrypts; a removed key is named in the error', async () => {
    const old = new EncryptionCodec([k1]);
    const rotated = new EncryptionCodec([k2, k1]);
    const [byOld] = await old.encode([payload('before rotation')]);
    const [byNew] = await rotated.encode([payload('after rotation')]);
    assert.equal(text(byNew.metadata![METADATA_KEY_ID]), 'k2');
    assert.equal(defaultPayloadConverter.fromPayload((await rotated.decode([byOld]))[0]), 'before rotation');
    await assert.rejects(
      new EncryptionCodec([k2]).decode([byOld]),
      /key 'k1', which is not among the configured keys \(k2\)/,
    );
  });

  test('tampered data or a wrong key with the same ID fails authentication; plain payloads pass through', async () => {
    const codec = new EncryptionCodec([k1]);
    const [sealed] = await codec.encode([payload('x')]);
    const data = Buffer.from(sealed.data!);
    data[20] ^= 1;
    await assert.rejects(codec.decode([{ ...sealed, data }]), /failed authentication/);
    const impostor = new EncryptionCodec([{ id: 'k1', key: k2.key }]);
    await assert.rejects(impostor.decode([sealed]), /failed authentication/);
    const plain = payload('written before encryption');
    assert.deepEqual(await codec.decode([plain]), [plain]);
  });

  test('key specs: malformed entries are named by position and id, never echoing key material', () => {
    assert.throws(() => parseEncryptionKeys(''), /expected one or more 'id:base64key'/);
    assert.throws(() => parseEncryptionKeys('noseparator'), /entry 1: expected 'id:base64key'/);
    assert.throws(
      () => parseEncryptionKeys(`a:${Buffer.alloc(16).toString('base64')}`),
      /key 'a' must be 32 bytes of base64 \(got 16 bytes\)/,
    );
    const spec = generateKeySpec('a');
    assert.throws(() => parseEncryptionKeys(`${spec},${spec}`), /entry 2: key id 'a' appears twice/);
    try {
      parseEncryptionKeys(`bad id:${spec.split(':')[1]}`);
      assert.fail('should throw');
    } catch (err) {
      assert.ok(!(err as Error).message.includes(spec.split(':')[1]));
    }
  });
});

describe('encryption keys from the configuration', () => {
  test('NESTOR_ENCRYPTION_KEYS is parsed at load; a bad value names the variable', () => {
    const spec = `${generateKeySpec('new')},${generateKeySpec('old')}`;
    const c = loadConfig({ NESTOR_ENCRYPTION_KEYS: spec });
    assert.deepEqual(
      c.encryptionKeys?.map((k) => k.id),
      ['new', 'old'],
    );
    const r = resolveEncryptionKeys(c);
    assert.equal(r.source, 'env');
    assert.match(describeKeys(r), /key 'new' from NESTOR_ENCRYPTION_KEYS/);
    assert.throws(
      () => loadConfig({ NESTOR_ENCRYPTION_KEYS: 'x:short' }),
      (e: Error) => e instanceof ConfigError && /NESTOR_ENCRYPTION_KEYS: key 'x' must be 32 bytes/.test(e.message),
    );
    assert.throws(
      () => loadConfig({ NESTOR_REQUIRE_ENCRYPTION: 'yes' }),
      /NESTOR_REQUIRE_ENCRYPTION: expected 'true' or 'false'/,
    );
  });

  test('without keys a development key is generated once (mode 0600) and reused; the service says so', () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'nestor-keys-'));
    const first = resolveEncryptionKeys(loadConfig({ NESTOR_DATA_DIR: dataDir }));
    assert.equal(first.source, 'dev-file');
    assert.equal(first.generated, true);
    assert.match(
      describeKeys(first),
      /development key generated now into .*encryption-keys; set NESTOR_ENCRYPTION_KEYS/,
    );
    assert.equal(statSync(first.path!).mode & 0o777, 0o600);
    const second = resolveEncryptionKeys(loadConfig({ NESTOR_DATA_DIR: dataDir }));
    assert.equal(second.generated, false);
    assert.deepEqual(second.keys, first.keys);
    assert.ok(
      !describeKeys(first).includes(readFileSync(first.path!, 'utf8').split(':')[1].trim()),
      'the key is never printed',
    );
  });

  test('NESTOR_REQUIRE_ENCRYPTION=true refuses to run without a configured key', () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'nestor-keys-'));
    assert.throws(
      () => resolveEncryptionKeys(loadConfig({ NESTOR_DATA_DIR: dataDir, NESTOR_REQUIRE_ENCRYPTION: 'true' })),
      (e: Error) => e instanceof ConfigError && /NESTOR_ENCRYPTION_KEYS is not set/.test(e.message),
    );
    const ok = resolveEncryptionKeys(
      loadConfig({ NESTOR_REQUIRE_ENCRYPTION: 'true', NESTOR_ENCRYPTION_KEYS: generateKeySpec('prod') }),
    );
    assert.equal(ok.keys[0].id, 'prod');
  });
});

describe('codec server', () => {
  const codec = new EncryptionCodec(parseEncryptionKeys(generateKeySpec('ui')));
  const UI = 'http://127.0.0.1:8233';
  const TOKEN = 'a-bearer-token-for-the-ui';
  let open: RunningCodecServer;
  let guarded: RunningCodecServer;
  const asJson = (p: Payload) => ({
    metadata: Object.fromEntries(
      Object.entries(p.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v).toString('base64')]),
    ),
    data: Buffer.from(p.data ?? []).toString('base64'),
  });
  const post = (s: RunningCodecServer, path: string, body: unknown, headers: Record<string, string> = {}) =>
    request(`${s.url}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });

  before(async () => {
    open = await startCodecServer({ codec, corsOrigins: [UI], insecure: true, port: 0 });
    guarded = await startCodecServer({ codec, corsOrigins: [UI], token: TOKEN, port: 0 });
  });
  after(async () => {
    await open.close();
    await guarded.close();
  });

  test('refuses to start without a token unless told it is local development, and says what to set', async () => {
    await assert.rejects(
      startCodecServer({ codec, corsOrigins: [UI], port: 0 }),
      /NESTOR_CODEC_TOKEN is required.*NESTOR_CODEC_INSECURE=true/,
    );
  });

  test('`nestor codec-server` without NESTOR_CODEC_TOKEN exits saying what to set', () => {
    const env = { ...process.env };
    delete env.NESTOR_CODEC_TOKEN;
    delete env.NESTOR_CODEC_INSECURE;
    const r = spawnSync(process.execPath, [join(PROJECT_ROOT, 'dist/src/cli.js'), 'codec-server', '--port', '0'], {
      encoding: 'utf8',
      env,
      timeout: 20_000,
    });
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /NESTOR_CODEC_TOKEN is required/);
  });

  test('binds to 127.0.0.1 and decodes what the codec encoded, as the UI sends it', async () => {
    assert.match(open.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    const [sealed] = await codec.encode([payload({ llmApiKey: SECRET })]);
    const res = await post(open, '/decode', { payloads: [asJson(sealed)] }, { origin: UI, 'x-namespace': 'default' });
    assert.equal(res.statusCode, 200);
    assert.equal(res.headers['access-control-allow-origin'], UI);
    const body = (await res.body.json()) as { payloads: Array<{ metadata: Record<string, string>; data: string }> };
    assert.equal(Buffer.from(body.payloads[0].metadata.encoding, 'base64').toString(), 'json/plain');
    assert.deepEqual(JSON.parse(Buffer.from(body.payloads[0].data, 'base64').toString()), { llmApiKey: SECRET });
    const enc = await post(open, '/encode', { payloads: [asJson(payload('typed in the UI'))] });
    const encoded = (await enc.body.json()) as { payloads: Array<{ metadata: Record<string, string> }> };
    assert.equal(Buffer.from(encoded.payloads[0].metadata.encoding, 'base64').toString(), ENCODING_ENCRYPTED);
  });

  test('CORS: the preflight names the allowed headers for the UI origin only; other origins get 403 and no CORS header', async () => {
    const pre = await request(`${open.url}/decode`, {
      method: 'OPTIONS',
      headers: { origin: UI, 'access-control-request-method': 'POST' },
    });
    assert.equal(pre.statusCode, 204);
    assert.equal(pre.headers['access-control-allow-origin'], UI);
    assert.match(String(pre.headers['access-control-allow-headers']), /Authorization/);
    await pre.body.dump();
    const evil = await post(open, '/decode', { payloads: [] }, { origin: 'http://evil.example' });
    assert.equal(evil.statusCode, 403);
    assert.equal(evil.headers['access-control-allow-origin'], undefined);
    await evil.body.dump();
  });

  test('`nestor codec-server` refuses a bad port naming the option (exit 2)', () => {
    const r = spawnSync('node', [require.resolve('../../src/cli'), 'codec-server', '--port', 'abc'], {
      encoding: 'utf8',
    });
    assert.equal(r.status, 2);
    assert.match(r.stderr, /'-p, --port <port>' argument 'abc' is invalid\. expected a port number/);
  });

  test('with a token, requests without the right bearer get 401; bad bodies get 400 naming the field; other routes 404', async () => {
    const none = await post(guarded, '/decode', { payloads: [] }, { origin: UI });
    assert.equal(none.statusCode, 401);
    assert.match(((await none.body.json()) as { error: string }).error, /bearer token/);
    const wrong = await post(guarded, '/decode', { payloads: [] }, { authorization: 'Bearer nope' });
    assert.equal(wrong.statusCode, 401);
    await wrong.body.dump();
    const right = await post(guarded, '/decode', { payloads: [] }, { authorization: `Bearer ${TOKEN}` });
    assert.equal(right.statusCode, 200);
    await right.body.dump();
    const bad = await post(open, '/decode', '{not json');
    assert.equal(bad.statusCode, 400);
    assert.match(((await bad.body.json()) as { error: string }).error, /body: expected JSON/);
    const shape = await post(open, '/decode', { payload: 1 });
    assert.match(((await shape.body.json()) as { error: string }).error, /payloads: expected an array/);
    const nowhere = await post(open, '/elsewhere', {});
    assert.equal(nowhere.statusCode, 404);
    await nowhere.body.dump();
  });
});

describe('the codec server of `nestor dev` / `nestor cluster` and its token', () => {
  const base = (env: Record<string, string>) =>
    loadConfig({ NESTOR_DATA_DIR: mkdtempSync(join(tmpdir(), 'codec-')), ...env });
  const realKeys = `k1:${randomBytes(32).toString('base64')}`;
  test("serves without a token only for local development: the dev key and this machine's own Temporal server", () => {
    assert.equal(codecWithoutToken(base({})), true);
    assert.equal(codecWithoutToken(base({ NESTOR_CODEC_TOKEN: 't0ken-of-sixteen-chars' })), false);
    assert.equal(codecWithoutToken(base({ NESTOR_ENCRYPTION_KEYS: realKeys, NESTOR_CODEC_INSECURE: 'true' })), true);
  });
  test('with real keys or a Temporal server elsewhere and no token, it refuses to start, saying what to set', () => {
    for (const env of [{ NESTOR_ENCRYPTION_KEYS: realKeys }, { TEMPORAL_ADDRESS: 'temporal.internal:7233' }] as Array<
      Record<string, string>
    >)
      assert.throws(
        () => codecWithoutToken(base(env)),
        (err: Error) =>
          err instanceof ConfigError &&
          /NESTOR_CODEC_TOKEN: required: .*NESTOR_CODEC_INSECURE=true/.test(err.message) &&
          !err.message.includes(realKeys),
      );
  });
});
