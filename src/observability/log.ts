// Structured logs: one JSON object per line on stderr, with the conversation, the user and the step when known, and
// every secret-looking field redacted before it is written.
import type { LogLevel, LogMetadata, Logger } from '@temporalio/common';
import { conversationIdOf } from '../shared/constants';

const LEVELS: Record<LogLevel, number> = { TRACE: 0, DEBUG: 1, INFO: 2, WARN: 3, ERROR: 4 };
export const REDACTED = '[REDACTED]';

/** Field names whose values are secrets wherever they appear (LLM keys, git tokens, session keys, custom secrets). */
const SECRET_KEY = /(api[_-]?key|apikey|token|secret|password|passwd|authorization|cookie|credential|private[_-]?key)/i;
/** Secret-shaped text inside free strings: bearer headers and `key=value` pairs with a secret-looking key. */
const SECRET_TEXT = [
  /\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]{6,}/gi,
  /\b((?:[A-Za-z_]*?)(?:api[_-]?key|token|secret|password)["']?\s*[:=]\s*["']?)[^\s"',;}&]+/gi,
];

function redactText(s: string): string {
  return SECRET_TEXT.reduce(
    (t, re) =>
      t.replace(re, (_m, p1: string) => (/^(bearer|basic)$/i.test(p1) ? `${p1} ${REDACTED}` : `${p1}${REDACTED}`)),
    s,
  );
}

/** A copy of value with secret fields and secret-shaped text replaced; cycles and depth are bounded. */
export function redact(value: unknown, depth = 0, seen = new WeakSet<object>()): unknown {
  if (typeof value === 'string') return redactText(value);
  if (value === null || typeof value !== 'object') return typeof value === 'bigint' ? value.toString() : value;
  if (seen.has(value) || depth > 8) return '[…]';
  seen.add(value);
  if (value instanceof Error) {
    return {
      type: (value as { type?: string }).type ?? value.name,
      message: redactText(value.message),
      ...(value.cause ? { cause: redact(value.cause, depth + 1, seen) } : {}),
    };
  }
  if (value instanceof Date) return value.toISOString();
  if (ArrayBuffer.isView(value)) return `[${value.byteLength} bytes]`;
  if (Array.isArray(value)) return value.map((v) => redact(v, depth + 1, seen));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    out[k] = SECRET_KEY.test(k) && v !== undefined && v !== null && v !== '' ? REDACTED : redact(v, depth + 1, seen);
  }
  return out;
}

export interface JsonLoggerOptions {
  level?: LogLevel;
  /** @default a line to process.stderr */
  write?: (line: string) => void;
}

/** The Runtime logger: SDK, workflow and activity logs all pass through here. */
export class JsonLogger implements Logger {
  private readonly min: number;
  private readonly write: (line: string) => void;

  constructor(o: JsonLoggerOptions = {}) {
    this.min = LEVELS[o.level ?? 'INFO'];
    this.write = o.write ?? ((line) => process.stderr.write(line));
  }

  log(level: LogLevel, message: string, meta: LogMetadata = {}): void {
    if (LEVELS[level] < this.min) return;
    const m = redact(meta) as Record<string, unknown>;
    // The SDK's own lines carry the workflow ID; name the conversation for them too.
    const fromWorkflow = conversationIdOf(typeof m.workflowId === 'string' ? m.workflowId : undefined);
    const record = {
      time: new Date().toISOString(),
      level,
      msg: redactText(message),
      ...(m.conversationId === undefined && fromWorkflow ? { conversationId: fromWorkflow } : {}),
      ...(m.step === undefined && typeof m.activityType === 'string' ? { step: m.activityType } : {}),
      ...m,
    };
    this.write(`${JSON.stringify(record)}\n`);
  }
  trace(message: string, meta?: LogMetadata) {
    this.log('TRACE', message, meta);
  }
  debug(message: string, meta?: LogMetadata) {
    this.log('DEBUG', message, meta);
  }
  info(message: string, meta?: LogMetadata) {
    this.log('INFO', message, meta);
  }
  warn(message: string, meta?: LogMetadata) {
    this.log('WARN', message, meta);
  }
  error(message: string, meta?: LogMetadata) {
    this.log('ERROR', message, meta);
  }
}
