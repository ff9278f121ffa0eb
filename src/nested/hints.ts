// What to check when the nested agent server fails: supplied here, by the adapter that speaks to it, and appended to
// the failure by the activity interceptor (errors/cast-known-errors.ts).
import { ErrorType, type Hint } from '../errors';
import { sandboxLogs } from '../runtime/hints';

export const NESTED_HINTS: Partial<Record<string, Hint>> = {
  [ErrorType.NestedUnauthorized]: () =>
    'that the container was not recreated under the conversation (its session key changes)',
  [ErrorType.GitProviderRejected]: () =>
    "the git provider token in gitProviderTokens (the nested server checks it against the provider's API, so it also needs egress)",
  [ErrorType.NestedBadRequest]: () =>
    "the field the nested server names against the start input's settings (docs/contract.md)",
  [ErrorType.NestedNotFound]: (id) =>
    `that the nested conversation exists (GET /api/conversations/<id> on the sandbox) and ${sandboxLogs(id)}`,
  [ErrorType.NestedUnavailable]: (id) =>
    `${sandboxLogs(id)} (the agent server may be overloaded or crashed) and NESTOR_NESTED_TIMEOUT_MS`,
  [ErrorType.RepositoryCloneFailed]: () =>
    "the start's repository and branch, the git token of its gitProvider (gitProviderTokens, with `host` for a self-hosted provider) and the sandbox's egress",
  [ErrorType.NotReady]: (id) => `${sandboxLogs(id)} for the agent's start-up and timeouts.readyTimeoutMs`,
};
