// Where the encryption keys come from: NESTOR_ENCRYPTION_KEYS, else (unless NESTOR_REQUIRE_ENCRYPTION=true) a
// development key generated once into the data folder (ignored by git) and shared by the worker, the CLI and tests.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { DataConverter } from '@temporalio/common';
import type { NestorConfig } from '../config';
import { ConfigError } from '../errors';
import { EncryptionCodec, generateKeySpec, parseEncryptionKeys, type EncryptionKey } from './encryption';

export const DEV_KEY_FILE = 'encryption-keys';

/** Module path of the failure converter (message and stack encoded), for the client, the worker and the bundler. */
export const FAILURE_CONVERTER_PATH = require.resolve('../shared/failure-converter');

export interface ResolvedKeys {
  keys: EncryptionKey[];
  /** 'env' for NESTOR_ENCRYPTION_KEYS, 'dev-file' for the generated development key. */
  source: 'env' | 'dev-file';
  /** The development key file, when that is the source. */
  path?: string;
  /** True when this call created the development key. */
  generated?: boolean;
}

export function resolveEncryptionKeys(
  c: Pick<NestorConfig, 'encryptionKeys' | 'requireEncryption' | 'dataDir'>,
): ResolvedKeys {
  if (c.encryptionKeys) return { keys: c.encryptionKeys, source: 'env' };
  if (c.requireEncryption) {
    throw new ConfigError(
      "NESTOR_REQUIRE_ENCRYPTION=true but NESTOR_ENCRYPTION_KEYS is not set: expected 'id:base64key' (generate a key with 'openssl rand -base64 32')",
    );
  }
  const path = join(c.dataDir, DEV_KEY_FILE);
  let generated = false;
  let spec: string;
  try {
    spec = readFileSync(path, 'utf8');
  } catch {
    mkdirSync(c.dataDir, { recursive: true });
    try {
      // 'wx': two processes starting at once agree on whichever key was written first.
      writeFileSync(path, `${generateKeySpec(`dev-${Date.now().toString(36)}`)}\n`, { flag: 'wx', mode: 0o600 });
      generated = true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    spec = readFileSync(path, 'utf8');
  }
  return { keys: parseEncryptionKeys(spec.trim(), path), source: 'dev-file', path, generated };
}

/** One line for the operator: which key encrypts, and where it came from (never the key itself). */
export function describeKeys(r: ResolvedKeys): string {
  const ids = r.keys.map((k) => k.id).join(', ');
  return r.source === 'env'
    ? `payloads encrypted with key '${r.keys[0].id}' from NESTOR_ENCRYPTION_KEYS (decrypting with: ${ids})`
    : `payloads encrypted with a development key ${r.generated ? 'generated now into' : 'read from'} ${r.path}; set NESTOR_ENCRYPTION_KEYS (and NESTOR_REQUIRE_ENCRYPTION=true) in production`;
}

/**
 * The data converter every nestor client and worker uses: the encryption codec and the encoding failure converter.
 * The worker's (`role: 'worker'`) marks a payload sealed with a key it lacks instead of failing on it (undecryptable.ts).
 */
export function nestorDataConverter(
  keys: EncryptionKey[],
  o: { role?: 'client' | 'worker'; refusePlaintext?: boolean } = {},
): DataConverter {
  const worker = o.role === 'worker';
  return {
    payloadCodecs: [
      new EncryptionCodec(keys, {
        unknownKey: worker ? 'mark' : 'throw',
        plaintext: worker && o.refusePlaintext ? 'mark' : 'pass',
      }),
    ],
    failureConverterPath: FAILURE_CONVERTER_PATH,
  };
}
