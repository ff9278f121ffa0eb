// Whose a container is: the nestor service that made it (label `nestor.owner`) and the conversation's life
// (`nestor.incarnation`). A sandbox is adopted, resumed, listed or removed only by its own service and life.
import { LABELS } from '../shared/constants';
import { ErrorType, NestorError } from '../errors';
import type { RuntimeSummary } from './provider';

/** Which nestor service's sandboxes these are (label `nestor.owner`); no ID: every managed one. */
export interface Owner {
  id?: string;
  /** Owner labels earlier versions wrote for this same service (still its own). */
  formerly?: (label: string) => boolean;
}

/** Whether a container's owner label is this service's. */
export function ownedBy(owner: Owner, label: string | undefined): boolean {
  return !owner.id || label === owner.id || (label !== undefined && !!owner.formerly?.(label));
}

/**
 * The label filter that lists this service's containers: exact when only one spelling is its own; with former
 * spellings, every managed container is listed and `ownedBy` decides.
 */
export function ownerFilter(owner: Owner): string[] {
  return owner.id && !owner.formerly ? [`${LABELS.owner}=${owner.id}`] : [];
}

/**
 * Whose is a container or volume found under the conversation's name, by its labels: this incarnation's own, or an
 * earlier life's of the same conversation ID (to be removed, never inherited). Anything not made by this nestor
 * service (no managed label, another `owner`) is never touched: RuntimeStartFailed says whose it is. With no
 * incarnation asked for, any of this service's is its own.
 */
export function claimOf(
  name: string,
  labels: Record<string, string> | undefined,
  owner: Owner,
  incarnation: string | undefined,
): 'own' | 'earlier' {
  if (labels?.[LABELS.managed] !== 'true') {
    throw new NestorError(
      ErrorType.RuntimeStartFailed,
      `a container or volume named ${name} exists but is not managed by nestor; remove or rename it`,
      false,
    );
  }
  const theirs = labels[LABELS.owner];
  if (!ownedBy(owner, theirs)) {
    throw new NestorError(
      ErrorType.RuntimeStartFailed,
      `${name} belongs to another nestor service (owner '${theirs ?? 'none'}', this one is '${owner.id}'; set NESTOR_SERVICE_ID alike on every worker of one service); it is never adopted`,
      false,
    );
  }
  return incarnation === undefined || labels[LABELS.incarnation] === incarnation ? 'own' : 'earlier';
}

/**
 * What `list` and `inspect` say of a container. A claimed pool member carries no conversation label: its name says
 * whose it is (the user is on its lock).
 */
export function runtimeSummary(
  prefix: string,
  id: string,
  rawName: string,
  labels: Record<string, string>,
  state: string,
  createdAt: string,
): RuntimeSummary {
  const name = rawName.replace(/^\//, '');
  const claimed = name.startsWith(prefix) ? name.slice(prefix.length) : '';
  const pool = labels[LABELS.pool];
  return {
    runtimeId: id,
    name,
    conversationId: labels[LABELS.conversationId] ?? claimed,
    userId: labels[LABELS.userId] ?? '',
    state,
    createdAt,
    ...(pool && !claimed && { pool: { name: pool, memberId: labels[LABELS.poolMember] ?? '' } }),
  };
}
