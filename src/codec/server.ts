// The codec server: the Temporal UI posts payloads here to show them decoded to the operator (and encoded, for
// payloads an operator types in). Only the UI's origin may read the answers (CORS), and a bearer token is required
// unless turned off, explicitly, for local development.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { timingSafeEqual } from 'node:crypto';
import type { PayloadCodec } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import { HttpError } from '../errors';

const MAX_BODY_BYTES = 8 * 1024 * 1024;

export interface CodecServerOptions {
  codec: PayloadCodec;
  /** Exact origins allowed to call from a browser, e.g. http://127.0.0.1:8233. */
  corsOrigins: string[];
  /** Requests must carry `Authorization: Bearer <token>`. Required unless `insecure`. */
  token?: string;
  /**
   * Serve without a token: anyone who reaches the port can decrypt every payload. Only for local development
   * (`nestor dev`, NESTOR_CODEC_INSECURE=true), and said so at start. @default false
   */
  insecure?: boolean;
  /** @default 127.0.0.1 */
  host?: string;
  port: number;
}

export interface RunningCodecServer {
  url: string;
  server: Server;
  close(): Promise<void>;
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY_BYTES) {
        reject(new HttpError(413, `body larger than ${MAX_BODY_BYTES} bytes`));
        req.destroy();
      } else chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** `{ payloads: [{ metadata: { k: base64 }, data: base64 }] }`, the UI's JSON form of Payloads. */
function parsePayloads(body: Buffer): temporal.api.common.v1.IPayload[] {
  let json: unknown;
  try {
    json = JSON.parse(body.toString('utf8'));
  } catch {
    throw new HttpError(400, 'body: expected JSON');
  }
  if (typeof json !== 'object' || json === null || !Array.isArray((json as { payloads?: unknown }).payloads)) {
    throw new HttpError(400, 'payloads: expected an array of { metadata, data }');
  }
  try {
    return temporal.api.common.v1.Payloads.fromObject(json).payloads;
  } catch (err) {
    throw new HttpError(400, `payloads: ${(err as Error).message}`);
  }
}

export function createCodecHandler(o: CodecServerOptions) {
  const allowed = new Set(o.corsOrigins);
  return async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const origin = req.headers.origin;
    const send = (status: number, body?: unknown) => {
      const headers: Record<string, string> = { Vary: 'Origin' };
      if (origin && allowed.has(origin)) {
        headers['Access-Control-Allow-Origin'] = origin;
        headers['Access-Control-Allow-Credentials'] = 'true';
      }
      if (body !== undefined) headers['Content-Type'] = 'application/json';
      res.writeHead(status, headers).end(body === undefined ? undefined : JSON.stringify(body));
    };
    try {
      // A browser page from another origin gets nothing it could read.
      if (origin && !allowed.has(origin)) throw new HttpError(403, `origin ${origin} is not allowed`);
      const path = (req.url ?? '/').split('?')[0];
      if (req.method === 'OPTIONS') {
        res.setHeader('Access-Control-Allow-Methods', 'POST, OPTIONS');
        res.setHeader('Access-Control-Allow-Headers', 'Content-Type, Authorization, X-Namespace');
        res.setHeader('Access-Control-Max-Age', '600');
        return send(204);
      }
      if (path !== '/encode' && path !== '/decode')
        throw new HttpError(404, `no route ${path}; use POST /encode or POST /decode`);
      if (req.method !== 'POST') throw new HttpError(405, `${path} takes POST`);
      if (o.token && !sameSecret(req.headers.authorization ?? '', `Bearer ${o.token}`)) {
        throw new HttpError(401, 'authorization: expected the bearer token configured in NESTOR_CODEC_TOKEN');
      }
      const payloads = parsePayloads(await readBody(req));
      const out = path === '/encode' ? await o.codec.encode(payloads) : await o.codec.decode(payloads);
      send(
        200,
        temporal.api.common.v1.Payloads.toObject(temporal.api.common.v1.Payloads.create({ payloads: out }), {
          bytes: String,
        }),
      );
    } catch (err) {
      const status = err instanceof HttpError ? err.status : 400;
      send(status, { error: (err as Error).message });
    }
  };
}

export async function startCodecServer(o: CodecServerOptions): Promise<RunningCodecServer> {
  if (!o.token && !o.insecure) {
    throw new Error(
      'codec server: NESTOR_CODEC_TOKEN is required (it decrypts every payload for whoever calls it); set NESTOR_CODEC_INSECURE=true only for local development',
    );
  }
  const handler = createCodecHandler(o);
  const server = createServer((req, res) => void handler(req, res));
  const host = o.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${host}:${port}`,
    server,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
