// What the contract suites (V0: contract.test.ts, V1: contract-v1.test.ts) share: one server's answers recorded step by
// step, and where two bodies differ in shape.
import { request } from 'undici';

export interface Answer {
  status: number;
  /** 'json' or 'text', from the content type. */
  kind: 'json' | 'text';
  body: unknown;
}

const type = (v: unknown) => (v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v);

/** Where a body's shape differs: keys present on one side only, or values of different JSON types (null matches any). */
export function shapeDiff(a: unknown, b: unknown, path = 'body'): string[] {
  if (a === null || b === null) return [];
  if (type(a) !== type(b)) return [`${path}: ${type(a)} vs ${type(b)}`];
  if (Array.isArray(a) && Array.isArray(b)) return a.length && b.length ? shapeDiff(a[0], b[0], `${path}[0]`) : [];
  if (type(a) !== 'object') return [];
  const [ao, bo] = [a as Record<string, unknown>, b as Record<string, unknown>];
  return [...new Set([...Object.keys(ao), ...Object.keys(bo)])].flatMap((k) =>
    !(k in ao)
      ? [`${path}.${k}: only on the emulator`]
      : !(k in bo)
        ? [`${path}.${k}: only on the real server`]
        : shapeDiff(ao[k], bo[k], `${path}.${k}`),
  );
}

/** Calls to one server, each answer kept under its step's name. */
export function recorder(url: string, key: string) {
  const answers = new Map<string, Answer>();
  const call = async (
    name: string,
    method: 'GET' | 'POST' | 'DELETE',
    path: string,
    body?: unknown,
    withKey = true,
  ): Promise<Answer> => {
    const res = await request(`${url}${path}`, {
      method,
      headers: {
        ...(withKey && { 'x-session-api-key': key }),
        ...(body !== undefined && { 'content-type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
      headersTimeout: 30_000,
      bodyTimeout: 30_000,
    });
    const text = await res.body.text();
    const json = String(res.headers['content-type'] ?? '').startsWith('application/json');
    const answer: Answer = {
      status: res.statusCode,
      kind: json ? 'json' : 'text',
      body: json && text ? JSON.parse(text) : text,
    };
    answers.set(name, answer);
    return answer;
  };
  return { answers, call };
}

/** The steps where the two servers answered another status code or kind (JSON, plain text), or the emulator none. */
export function statusDiffs(real: Map<string, Answer>, emulated: Map<string, Answer>): string[] {
  const diffs: string[] = [];
  for (const [step, r] of real) {
    const e = emulated.get(step);
    if (!e) diffs.push(`${step}: no answer from the emulator`);
    else if (e.status !== r.status || e.kind !== r.kind)
      diffs.push(`${step}: real ${r.status} ${r.kind}, emulator ${e.status} ${e.kind}`);
  }
  return diffs;
}
