// SandboxPool: the durable owner of one warm pool (workflow ID `sandbox-pool-<pool>`). Each pass surveys the members
// in the Docker engine, replaces those that are not running, fail their health check, got stuck booting or are older
// than the bound, removes extras, and boots the missing ones (a few at a time). A claim wakes it (signal), so it
// refills at once; otherwise it checks every tendIntervalMs. Members are counted from the engine on every pass, so
// the pool never grows past its size whatever claims, crashes or restarts happened meanwhile. Operators resize,
// disable and drain it with updates (the CLI's `nestor pool`); the UI shows its counts in the current details.
import {
  ApplicationFailure,
  allHandlersFinished,
  condition,
  continueAsNew,
  log,
  metricMeter,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  upsertMemo,
  uuid4,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import { ErrorType } from '../errors';
import { METRICS } from '../shared/constants';
import { DEFAULT_POOL_BOOT_BATCH, DEFAULT_POOL_MAX_AGE_MS, DEFAULT_POOL_TEND_INTERVAL_MS } from '../defaults';
import {
  drainPoolUpdate,
  memberClaimedSignal,
  poolStatusQuery,
  resizePoolUpdate,
  setPoolEnabledUpdate,
  type PoolCounters,
  type PoolStatus,
  type PoolSurvey,
  type SandboxPoolInput,
} from './messages';

const { surveyPool, retirePoolMember, poolCapacity } = proxyActivities<Activities>({
  summary: 'the pool in the Docker engine',
  startToCloseTimeout: '1 minute',
  retry: { initialInterval: '1 second', maximumInterval: '10 seconds', maximumAttempts: 5 },
});
const { createPoolMember } = proxyActivities<Activities>({
  summary: 'createPoolMember: boot one member, wait for /alive, make it claimable',
  startToCloseTimeout: '5 minutes',
  heartbeatTimeout: '30 seconds',
  retry: { initialInterval: '2 seconds', maximumAttempts: 2, nonRetryableErrorTypes: [ErrorType.RuntimeImageNotFound] },
});

/** History length past which a pass ends the run with continue-as-new (a pass writes ~10 events). */
const MAX_HISTORY = 2_000;
/** A member booting for longer than this is stuck (once in seven boots the real server's warm start hung). */
const STUCK_BOOT_MS = 5 * 60_000;

const metrics = () => ({
  target: metricMeter.createGauge(METRICS.poolTarget, 'int', 'sandboxes', 'Members the pool keeps ready'),
  ready: metricMeter.createGauge(METRICS.poolReady, 'int', 'sandboxes', 'Members ready to be claimed'),
  booting: metricMeter.createGauge(METRICS.poolBooting, 'int', 'sandboxes', 'Members booting'),
  created: metricMeter.createCounter(METRICS.poolCreated, 'sandboxes', 'Members made ready'),
  claimed: metricMeter.createCounter(METRICS.poolClaimed, 'sandboxes', 'Members taken by a start'),
  replaced: metricMeter.createCounter(METRICS.poolReplaced, 'sandboxes', 'Members replaced (unhealthy, old, stuck)'),
});

class Pool {
  size: number;
  enabled: boolean;
  draining = false;
  counters: PoolCounters;
  /** Members seen in the last survey or booted since: one that vanished without our retiring it was claimed. */
  known: Set<string>;
  lastError?: string;
  lastTendedAt?: string;
  ready = 0;
  booting = 0;
  wake = false;
  readonly m = metrics();

  constructor(readonly input: SandboxPoolInput) {
    this.size = input.size;
    this.enabled = input.carried?.enabled ?? true;
    this.counters = input.carried?.counters ?? { created: 0, claimed: 0, replaced: 0, failed: 0 };
    this.known = new Set(input.carried?.known ?? []);
    this.lastError = input.carried?.lastError;
  }

  get target(): number {
    return this.enabled && !this.draining ? this.size : 0;
  }

  status(): PoolStatus {
    const { pool } = this.input;
    const { size, enabled, draining, ready, booting, lastError, lastTendedAt } = this;
    return {
      pool,
      target: this.target,
      size,
      enabled,
      draining,
      ready,
      booting,
      counters: { ...this.counters },
      lastError,
      lastTendedAt,
    };
  }

  /** Shown in the UI: the counts an operator asks for first. */
  show(): void {
    const c = this.counters;
    const mode = this.draining ? 'draining' : this.enabled ? 'enabled' : 'disabled';
    setCurrentDetails(
      `**${this.input.pool}** (${mode}): ${this.ready} ready, ${this.booting} booting of ${this.target}; ` +
        `claimed ${c.claimed}, created ${c.created}, replaced ${c.replaced}, failed ${c.failed}` +
        (this.lastError ? `\n\nlast error: ${this.lastError}` : ''),
    );
    upsertMemo({ pool: this.status() });
    this.m.target.set(this.target);
    this.m.ready.set(this.ready);
    this.m.booting.set(this.booting);
  }

  /** Members that vanished from the engine without our retiring them were claimed by starts. */
  countClaims(survey: PoolSurvey): void {
    const present = new Set(survey.members.map((m) => m.memberId));
    for (const id of this.known) {
      if (present.has(id)) continue;
      this.known.delete(id);
      this.counters.claimed++;
      this.m.claimed.add(1);
    }
  }

  /** One pass: replace the broken, trim or fill to the target. */
  async tend(): Promise<void> {
    const { pool } = this.input;
    const survey = await surveyPool({ pool });
    this.countClaims(survey);
    for (const m of survey.members) this.known.add(m.memberId);
    const maxAgeMs = this.input.maxAgeMs ?? DEFAULT_POOL_MAX_AGE_MS;
    const live = [];
    for (const m of survey.members) {
      const problem =
        m.problem ??
        (m.ageMs > maxAgeMs ? `older than ${maxAgeMs} ms` : undefined) ??
        (m.state === 'booting' && m.ageMs > STUCK_BOOT_MS ? 'stuck booting' : undefined);
      if (problem) await this.retire(m.memberId, problem, true);
      else live.push(m);
    }
    // Extras beyond the target go, booting ones first (nothing claims them), then the oldest ready ones.
    const extras = live.length - this.target;
    const byPreference = [...live].sort((a, b) =>
      a.state === b.state ? b.ageMs - a.ageMs : a.state === 'booting' ? -1 : 1,
    );
    for (const m of byPreference.slice(0, Math.max(0, extras)))
      await this.retire(m.memberId, 'above the target', false);
    const kept = byPreference.slice(Math.max(0, extras));
    // Booting members here are left from a boot that did not finish (a worker lost mid-boot); they count, not claimable.
    this.booting = kept.filter((m) => m.state === 'booting').length;
    this.ready = kept.length - this.booting;
    this.show();
    await this.boot(this.target - kept.length);
    this.lastTendedAt = new Date().toISOString();
    this.show();
  }

  private async retire(memberId: string, why: string, replaced: boolean): Promise<void> {
    const removed = await retirePoolMember({ pool: this.input.pool, memberId });
    this.known.delete(memberId);
    if (!removed) {
      this.counters.claimed++; // claimed between the survey and the retire: a conversation's now
      this.m.claimed.add(1);
      return;
    }
    if (replaced) {
      this.counters.replaced++;
      this.m.replaced.add(1);
    }
    log.info('pool member retired', { pool: this.input.pool, memberId, why });
  }

  /** Boot `missing` members, a batch at a time; a failure is counted and noted, the next pass tries again. */
  private async boot(missing: number): Promise<void> {
    const batch = this.input.bootBatch ?? DEFAULT_POOL_BOOT_BATCH;
    for (let left = missing; left > 0 && this.target > 0; left -= batch) {
      const ids = Array.from({ length: Math.min(batch, left) }, () => uuid4().slice(0, 12));
      ids.forEach((id) => this.known.add(id));
      this.booting += ids.length;
      this.show();
      await Promise.all(ids.map((memberId) => this.bootOne(memberId)));
    }
  }

  private async bootOne(memberId: string): Promise<void> {
    const { pool } = this.input;
    try {
      await createPoolMember({ pool, memberId });
      this.counters.created++;
      this.m.created.add(1);
      this.ready++;
    } catch (err) {
      this.counters.failed++;
      this.lastError = `member ${memberId}: ${(err as Error).cause instanceof Error ? ((err as Error).cause as Error).message : (err as Error).message}`;
      log.warn('pool member failed to boot', { pool, memberId, error: this.lastError });
      await retirePoolMember({ pool, memberId }).catch(() => undefined);
      this.known.delete(memberId);
    } finally {
      this.booting--;
    }
  }

  carried(): SandboxPoolInput {
    return {
      ...this.input,
      size: this.size,
      carried: { enabled: this.enabled, counters: this.counters, known: [...this.known], lastError: this.lastError },
    };
  }
}

/** Refuse a size the machine cannot hold (the image's declared memory per member), naming both numbers. */
async function checkedSize(pool: string, size: number): Promise<number> {
  if (size === 0) return 0;
  const cap = await poolCapacity({ pool });
  if (size > cap.maxSize)
    throw ApplicationFailure.create({
      type: ErrorType.PoolTooLarge,
      message: `size: ${size} members of ${cap.memberMemoryMb} MB is more than this pool's share of the host's ${cap.hostMemoryMb} MB holds (at most ${cap.maxSize}); choose ${cap.maxSize} or fewer`,
      nonRetryable: true,
    });
  return size;
}

function wholeSize(size: unknown): void {
  if (typeof size !== 'number' || !Number.isInteger(size) || size < 0 || size > 1000)
    throw new Error(`size: expected a whole number from 0 to 1000, got ${JSON.stringify(size)}`);
}

export async function SandboxPool(input: SandboxPoolInput): Promise<PoolStatus> {
  const p = new Pool(input);
  setHandler(poolStatusQuery, () => p.status());
  setHandler(
    resizePoolUpdate,
    async ({ size }) => {
      p.size = await checkedSize(input.pool, size);
      p.wake = true;
      return p.status();
    },
    { validator: (arg) => wholeSize(arg?.size) },
  );
  setHandler(
    setPoolEnabledUpdate,
    ({ enabled }) => {
      p.enabled = enabled;
      p.wake = true;
      return p.status();
    },
    {
      validator: (arg) => {
        if (typeof arg?.enabled !== 'boolean') throw new Error('enabled: expected true or false');
      },
    },
  );
  setHandler(drainPoolUpdate, () => {
    p.draining = true;
    p.wake = true;
    return p.status();
  });
  setHandler(memberClaimedSignal, () => void (p.wake = true));

  wholeSize(input.size);
  // Checked, not assigned: a resize that raced this start (update-with-start) has set the size already.
  if (input.size > 0) await checkedSize(input.pool, input.size);
  for (;;) {
    p.wake = false;
    await p.tend();
    if (p.draining && p.ready === 0 && p.booting === 0) break;
    if (workflowInfo().continueAsNewSuggested || workflowInfo().historyLength > MAX_HISTORY) {
      await condition(allHandlersFinished);
      await continueAsNew<typeof SandboxPool>(p.carried());
    }
    await condition(() => p.wake, input.tendIntervalMs ?? DEFAULT_POOL_TEND_INTERVAL_MS);
  }
  await condition(allHandlersFinished);
  log.info('pool drained', { pool: input.pool });
  return p.status();
}
