// What every command shares: exit codes, argument parsers, and how a result is printed (JSON or for people).
import { InvalidArgumentError } from 'commander';
import type { AgentLoopInfo } from '../shared/schemas';

/** Exit codes: 1 a failure reported by the service, 2 bad input or configuration, 3 cannot reach Temporal. */
export const EXIT = { failure: 1, invalid: 2, unreachable: 3 } as const;

/** A `--port` value: an integer 0–65535 (0: any free port), else a usage error (exit 2). */
export function portNumber(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError('expected a port number (0-65535)');
  return n;
}

export function mask(key: string | undefined): string | undefined {
  return key ? `${key.slice(0, 4)}…(${key.length} chars, use --show-secrets)` : key;
}

export function print(value: unknown, json: boolean, human: () => string): void {
  process.stdout.write(json ? `${JSON.stringify(value, null, 2)}\n` : `${human()}\n`);
}

export function describe(info: AgentLoopInfo): string {
  const lines = [
    `conversation ${info.conversationId} (user ${info.userId}): ${info.status}${info.step ? ` · ${info.step}` : ''}`,
    info.runtimeId &&
      `  runtime:  ${info.runtimeId.slice(0, 12)}${info.startPath ? ` (${info.startPath === 'pool' ? 'from the warm pool' : `cold${info.coldReason ? `: ${info.coldReason}` : ''}`})` : ''}`,
    info.sandboxHost && `  host:     ${info.sandboxHost} (sandbox host; task queue sandbox-host-${info.sandboxHost})`,
    info.url && `  url:      ${info.url}`,
    info.sessionApiKey && `  session key: ${info.sessionApiKey}`,
    `  started:  ${info.startedAt}${info.readyAt ? `, ready ${info.readyAt}` : ''}${info.closedAt ? `, closed ${info.closedAt}` : ''}`,
    `  messages delivered: ${info.messagesDelivered}`,
    info.pausedAt && `  paused:   ${info.pausedAt}${info.pauseReason ? ` (${info.pauseReason})` : ''}`,
    info.lastError && `  error:    ${info.lastError.type} at ${info.lastError.step}: ${info.lastError.message}`,
    ...info.warnings.map((w) => `  warning:  ${w}`),
  ];
  return lines.filter(Boolean).join('\n');
}

/** Collects a repeatable option's values. */
export const collect = (v: string, prev: string[]) => [...prev, v];
