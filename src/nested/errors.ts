// How the nested server's error answers become typed NestorErrors: one status, one type, and the server's reason
// (from `detail`, `error` or `message` bodies, or plain text) in the message, never an echoed input.
import { ErrorType, NestorError, type ErrorTypeName } from '../errors';

/** The reason the session-key check gives (`{"detail":"Unauthorized"}`), as opposed to a 401 about something else. */
export const SESSION_KEY_REJECTED = 'Unauthorized';

/**
 * Map one nested-server status code onto a typed, retryable-or-not error whose message carries the server's reason.
 * The body is kept short and never holds our secrets (see summarizeBody).
 */
export function errorForStatus(method: string, path: string, status: number, body: string): NestorError {
  const reason = summarizeBody(body);
  const details = { method, path, status, body: reason };
  const what = `${method} ${path} answered ${status}${reason ? ` (${reason})` : ''}`;
  const err = (type: ErrorTypeName, message: string, retryable: boolean) =>
    new NestorError(type, message, retryable, details);
  if (status === 401 || status === 403) {
    return err(ErrorType.NestedUnauthorized, `${what}: the nested server rejected the session API key`, false);
  }
  if (status === 400 || status === 422) return err(ErrorType.NestedBadRequest, what, false);
  if (status === 404) return err(ErrorType.NestedNotFound, what, true);
  if (status === 408 || status === 429 || status >= 500) return err(ErrorType.NestedUnavailable, what, true);
  return err(ErrorType.NestedBadRequest, `${what}: unexpected status`, false);
}

/**
 * A short, value-free account of an error body. FastAPI's 422 details echo the offending input (which may be a
 * secret), so only their locations and messages are kept.
 */
export function summarizeBody(body: string): string {
  try {
    const parsed = JSON.parse(body) as { detail?: unknown; error?: unknown; message?: unknown };
    if (Array.isArray(parsed?.detail)) {
      return parsed.detail
        .map((d: { loc?: unknown[]; msg?: string }) => `${(d.loc ?? []).join('.')}: ${d.msg ?? 'invalid'}`)
        .join('; ')
        .slice(0, 300);
    }
    // OpenHands answers `{"detail": "…"}` (FastAPI), `{"error": "…"}` or `{"message": "…"}`: the reason is the string.
    for (const k of ['detail', 'error', 'message'] as const) {
      if (typeof parsed?.[k] === 'string') return (parsed[k] as string).slice(0, 300);
    }
  } catch {
    /* not JSON (e.g. a plain-text 500): fall through */
  }
  return body.trim().slice(0, 300);
}
