// AES-256-GCM payload codec: every payload nestor sends to Temporal is encrypted before it leaves the process, so
// workflow inputs (LLM keys, git tokens, custom secrets), results (session API keys) and failures are never stored in
// clear. Each encrypted payload names the key that sealed it, so keys can rotate: the first key encrypts, all decrypt.
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import type { Payload, PayloadCodec } from '@temporalio/common';
import { ValueError } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import { UNDECRYPTABLE, type Undecryptable } from './undecryptable';

export const ENCODING_ENCRYPTED = 'binary/encrypted';
export const METADATA_ENCODING_KEY = 'encoding';
export const METADATA_KEY_ID = 'encryption-key-id';
const IV_BYTES = 12;
const TAG_BYTES = 16;
const KEY_ID = /^[A-Za-z0-9._-]{1,64}$/;

export interface EncryptionKey {
  /** Stored in each payload's metadata; safe to show (it is a name, not key material). */
  id: string;
  /** 32 bytes. */
  key: Buffer;
}

const text = (b: Uint8Array | null | undefined) => (b ? Buffer.from(b).toString('utf8') : undefined);

/**
 * Parse `id:base64key[,id:base64key...]`; each key must decode to 32 bytes. Errors name the entry by position and ID,
 * never by its key material.
 */
export function parseEncryptionKeys(spec: string, source = 'NESTOR_ENCRYPTION_KEYS'): EncryptionKey[] {
  const entries = spec
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (entries.length === 0)
    throw new Error(`${source}: expected one or more 'id:base64key' entries separated by commas`);
  const seen = new Set<string>();
  return entries.map((entry, i) => {
    const at = entry.indexOf(':');
    const id = at > 0 ? entry.slice(0, at) : '';
    if (!KEY_ID.test(id))
      throw new Error(
        `${source}: entry ${i + 1}: expected 'id:base64key' with an id of letters, digits, '.', '_' or '-'`,
      );
    if (seen.has(id)) throw new Error(`${source}: entry ${i + 1}: key id '${id}' appears twice`);
    seen.add(id);
    const key = Buffer.from(entry.slice(at + 1), 'base64');
    if (key.length !== 32)
      throw new Error(
        `${source}: key '${id}' must be 32 bytes of base64 (got ${key.length} bytes); generate one with 'openssl rand -base64 32'`,
      );
    return { id, key };
  });
}

/** A new random key, in the `id:base64` form of NESTOR_ENCRYPTION_KEYS. */
export function generateKeySpec(id: string): string {
  return `${id}:${randomBytes(32).toString('base64')}`;
}

export interface EncryptionCodecOptions {
  /**
   * A payload sealed with a key this side lacks: 'throw' (clients: the error names both key sets) or 'mark' (the
   * worker: the payload becomes the UNDECRYPTABLE marker, which the workflow refuses with EncryptionKeyMismatch
   * instead of failing its task). @default 'throw'
   */
  unknownKey?: 'throw' | 'mark';
  /**
   * A payload that is not encrypted at all: passed through ('pass', the default: payloads written before encryption
   * was on), or (a worker with NESTOR_REQUIRE_ENCRYPTION) handed over as the same marker, so it is refused like one
   * sealed with an unknown key: whoever holds no shared key drives no conversation and puts nothing in history.
   */
  plaintext?: 'pass' | 'mark';
}

export class EncryptionCodec implements PayloadCodec {
  private readonly byId: Map<string, Buffer>;
  private readonly current: EncryptionKey;

  constructor(
    keys: EncryptionKey[],
    private readonly options: EncryptionCodecOptions = {},
  ) {
    if (keys.length === 0) throw new Error('EncryptionCodec needs at least one key');
    this.current = keys[0];
    this.byId = new Map(keys.map((k) => [k.id, k.key]));
  }

  /** The ID of the key that encrypts. */
  get keyId(): string {
    return this.current.id;
  }

  async encode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((p) => {
      const iv = randomBytes(IV_BYTES);
      const cipher = createCipheriv('aes-256-gcm', this.current.key, iv);
      // The whole payload, metadata included: the encoding and any message type are hidden too.
      const plain = temporal.api.common.v1.Payload.encode(p).finish();
      const sealed = Buffer.concat([iv, cipher.update(plain), cipher.final(), cipher.getAuthTag()]);
      return {
        metadata: {
          [METADATA_ENCODING_KEY]: Buffer.from(ENCODING_ENCRYPTED),
          [METADATA_KEY_ID]: Buffer.from(this.current.id),
        },
        data: sealed,
      };
    });
  }

  async decode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((p) => {
      const mark = (u: Undecryptable[typeof UNDECRYPTABLE]): Payload => ({
        metadata: { [METADATA_ENCODING_KEY]: Buffer.from('json/plain') },
        data: Buffer.from(JSON.stringify({ [UNDECRYPTABLE]: u } satisfies Undecryptable)),
      });
      // Payloads written before encryption was on (or by a client without it) pass through unchanged, unless refused.
      if (text(p.metadata?.[METADATA_ENCODING_KEY]) !== ENCODING_ENCRYPTED)
        return this.options.plaintext === 'mark'
          ? mark({ keyId: '(none)', workerKeyIds: [...this.byId.keys()], plaintext: true })
          : p;
      const id = text(p.metadata?.[METADATA_KEY_ID]);
      const key = id === undefined ? undefined : this.byId.get(id);
      if (!key && this.options.unknownKey === 'mark')
        return mark({ keyId: id ?? '(none)', workerKeyIds: [...this.byId.keys()] });
      if (!key) {
        throw new ValueError(
          `payload encrypted with key '${id ?? '(none)'}', which is not among the configured keys (${[...this.byId.keys()].join(', ')}); add it to NESTOR_ENCRYPTION_KEYS`,
        );
      }
      const data = Buffer.from(p.data ?? []);
      if (data.length < IV_BYTES + TAG_BYTES)
        throw new ValueError(`encrypted payload (key '${id}') is too short to be valid`);
      const decipher = createDecipheriv('aes-256-gcm', key, data.subarray(0, IV_BYTES));
      decipher.setAuthTag(data.subarray(data.length - TAG_BYTES));
      let plain: Buffer;
      try {
        plain = Buffer.concat([decipher.update(data.subarray(IV_BYTES, data.length - TAG_BYTES)), decipher.final()]);
      } catch {
        throw new ValueError(
          `encrypted payload (key '${id}') failed authentication: wrong key material or tampered data`,
        );
      }
      return temporal.api.common.v1.Payload.decode(plain);
    });
  }
}
