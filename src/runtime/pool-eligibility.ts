// Which starts a warm pool's member can serve, on any engine: a member is made before its conversation is known, so
// what is fixed when a sandbox is made (its environment, its network) must be the pool's.
import type { RuntimeSpec } from './provider';

/** Why a request cannot take a pooled sandbox on any engine, or undefined when it can. */
export function poolIneligible(spec: RuntimeSpec): string | undefined {
  if (spec.fromPool === false) return 'the request asked for a cold start';
  if (spec.env && Object.keys(spec.env).length > 0)
    return 'the request sets extra environment (settings.sandbox.env), fixed when a sandbox is created';
  if (spec.egress === false) return 'the request has no egress (settings.sandbox.egress false); pooled sandboxes have';
  return undefined;
}
