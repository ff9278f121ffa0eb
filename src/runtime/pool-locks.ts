// A warm-pool member's lock: a container that is never started, named after the member. Docker's exclusive name
// reservation makes creating it a mutex (a claim and a retire of one member cannot both win), and a claim's lock is
// the claim's record: it carries the conversation's labels (a renamed container cannot get new ones) and, for a V1
// member, the conversation's keys. It lives as long as the claimed sandbox and is removed last, with it.
import type Docker from 'dockerode';
import { LABELS } from '../shared/constants';
import type { RuntimeSpec } from './provider';
import { keysAsEnv, type ConversationKeys } from './deferred-init';
import { inspectContainer, statusOf } from './docker-parts';
import { poolLabels } from './container-spec';

/** Label of a member's lock container (its value: 'claim' or 'retire'). */
export const LOCK_LABEL = 'nestor.pool-lock';

/** Remove a lock (by name or ID); gone already is done. Its anonymous volumes (an image's VOLUME) go with it. */
export async function removeLock(docker: Docker, lock: string): Promise<void> {
  try {
    await docker.getContainer(lock).remove({ force: true, v: true });
  } catch (err) {
    if (statusOf(err) !== 404) throw err;
  }
}

export class PoolLocks {
  constructor(
    private readonly docker: Docker,
    private readonly o: { image: string; pool: string; prefix: string; owner?: string },
  ) {}

  name(memberId: string, pool = this.o.pool): string {
    return `${this.o.prefix}${pool}--lock-${memberId}`;
  }

  /** Create the member's lock; false when someone holds it. A claim's lock carries the conversation's labels. */
  async take(memberId: string, why: 'claim' | 'retire', spec?: RuntimeSpec, keys?: ConversationKeys): Promise<boolean> {
    try {
      await this.docker.createContainer({
        name: this.name(memberId),
        Image: this.o.image,
        HostConfig: { NetworkMode: 'none' },
        Env: keys && keysAsEnv(keys),
        Labels: {
          ...poolLabels(this.o.pool, memberId, this.o.owner),
          [LOCK_LABEL]: why,
          ...(spec && { [LABELS.conversationId]: spec.conversationId, [LABELS.userId]: spec.userId }),
          ...(spec?.incarnation && { [LABELS.incarnation]: spec.incarnation }),
        },
      });
      return true;
    } catch (err) {
      if (statusOf(err) === 409) return false;
      throw err;
    }
  }

  release(memberId: string): Promise<void> {
    return removeLock(this.docker, this.name(memberId));
  }

  inspect(memberId: string, pool = this.o.pool): Promise<Docker.ContainerInspectInfo | undefined> {
    return inspectContainer(this.docker, this.name(memberId, pool));
  }

  /** The member of this pool whose claim lock names this start (its conversation and incarnation), if any. */
  async lockedBy(spec: RuntimeSpec): Promise<string | undefined> {
    const label = [
      `${LOCK_LABEL}=claim`,
      `${LABELS.pool}=${this.o.pool}`,
      `${LABELS.conversationId}=${spec.conversationId}`,
    ];
    const locks = await this.docker.listContainers({ all: true, filters: { label } });
    return locks.find((l) => l.Labels[LABELS.incarnation] === spec.incarnation)?.Labels[LABELS.poolMember];
  }
}
