// Warm pools on Docker: identity-free sandboxes created ahead of time (`…--booting-<id>`, renamed `…--ready-<id>` once
// alive). Taking a member, to claim it for a start or to retire it, first creates its lock: a container named
// `…--lock-<id>` that is never started. Docker reserves a container name exclusively (a second create of the same name
// is 409), so exactly one taker wins; a rename alone would not do, since the engine renames whatever container the old
// name resolved to when the request arrived, even if another rename came first. The winner of a claim renames the
// member to the conversation's container name. Labels cannot change after create, so the lock also records the claim
// (the conversation, user, incarnation and owner a cold sandbox carries as labels) and lives as long as the sandbox.
import { randomBytes } from 'node:crypto';
import type Docker from 'dockerode';
import { LABELS } from '../shared/constants';
import { ErrorType, NestorError } from '../errors';
import type { PoolMember, PoolOps, RuntimeHandle, RuntimeSpec } from './provider';
import { poolIneligible } from './pool-eligibility';
import type { ImageManifest } from './image-manifest';
import { LOCK_LABEL, PoolLocks } from './pool-locks';
import { initializeServer, keysOfLock, newConversationKeys, type ConversationKeys } from './deferred-init';
import {
  applyLimits,
  bootsDormant,
  envOf,
  inspectContainer,
  removeVolumeWhenFree,
  renameContainer,
  statusOf,
  type SandboxNetworks,
} from './docker-parts';
import {
  buildPoolMemberSpec,
  containerName,
  SECRET_KEY_ENV,
  poolLabels,
  poolMemberName,
  poolNameFor,
  poolVolumeName,
  resolveMemoryMb,
  type SandboxDefaults,
} from './container-spec';
import { ownedBy, ownerFilter, type Owner } from './ownership';

/** What the pool needs from the Docker provider that owns it. */
export interface PoolHost {
  docker: Docker;
  image: string;
  owner?: string;
  /** Owner labels earlier versions wrote for this same service. */
  formerOwner?: (label: string) => boolean;
  convPrefix: string;
  defaults?: Partial<SandboxDefaults>;
  networks: SandboxNetworks;
  requirements(): Promise<ImageManifest>;
  /** Start if needed and read URL and key back from Docker. */
  handleOf(info: Docker.ContainerInspectInfo, adopted: boolean): Promise<RuntimeHandle>;
}

const STATES = ['booting', 'ready'] as const;

/** The ready members a claim tries, in order, and the one this start locked already (an earlier attempt), if any. */
type Candidates = { order: PoolMember[]; own?: string };

export { LOCK_LABEL };

export class DockerPool implements PoolOps {
  readonly poolName: string;
  /** Names of members, their volumes and locks start with it. */
  readonly prefix: string;

  private readonly locks: PoolLocks;
  private readonly ownership: Owner;

  constructor(
    private readonly host: PoolHost,
    opts: { poolName?: string; poolPrefix?: string } = {},
  ) {
    this.poolName = opts.poolName ?? poolNameFor(host.image);
    this.prefix = opts.poolPrefix ?? 'nestor-pool-';
    this.locks = new PoolLocks(host.docker, {
      image: host.image,
      pool: this.poolName,
      prefix: this.prefix,
      owner: host.owner,
    });
    this.ownership = { id: host.owner, formerly: host.formerOwner };
  }

  private name(memberId: string, state: (typeof STATES)[number]): string {
    return poolMemberName(this.poolName, memberId, state, this.prefix);
  }

  /** Unclaimed members (a claimed one carries its conversation's name), oldest first. */
  async members(): Promise<PoolMember[]> {
    const label = [`${LABELS.pool}=${this.poolName}`, ...ownerFilter(this.ownership)];
    const all = await this.host.docker.listContainers({ all: true, filters: { label } });
    const members: PoolMember[] = [];
    for (const c of all.filter((c) => ownedBy(this.ownership, c.Labels[LABELS.owner]))) {
      const name = (c.Names[0] ?? '').replace(/^\//, '');
      const memberId = c.Labels[LABELS.poolMember] ?? '';
      const state = STATES.find((s) => name === this.name(memberId, s));
      if (!state) continue; // claimed: a conversation's now
      members.push({
        memberId,
        name,
        runtimeId: c.Id,
        state,
        containerState: c.State,
        createdAt: new Date(c.Created * 1000).toISOString(),
      });
    }
    return members.sort((a, b) => a.createdAt.localeCompare(b.createdAt));
  }

  async createMember(memberId: string): Promise<{ member: PoolMember; url: string } | { taken: true }> {
    // Made ready already by an earlier attempt of this boot that did not report back: that one, not a second.
    const made = await this.inspect(this.name(memberId, 'ready'));
    if (made)
      return {
        member: (await this.members()).find((m) => m.memberId === memberId)!,
        url: (await this.host.handleOf(made, false)).url,
      };
    // Made ready and then claimed (or being retired): booting it again would mount the claimant's volume in a second
    // container, which the next start of anyone could claim once the first conversation closed.
    if (await this.taken(memberId)) return { taken: true };
    const manifest = await this.host.requirements();
    await this.host.networks.ensure(true);
    const { docker } = this.host;
    await docker.createVolume({
      Name: poolVolumeName(this.poolName, memberId, this.prefix),
      Labels: poolLabels(this.poolName, memberId, this.host.owner),
    });
    const spec = buildPoolMemberSpec({
      pool: this.poolName,
      memberId,
      image: this.host.image,
      sessionApiKey: randomBytes(32).toString('base64url'),
      initKey: randomBytes(32).toString('base64url'),
      poolPrefix: this.prefix,
      defaults: this.host.defaults,
      owner: this.host.owner,
      manifest,
    });
    try {
      await docker.createContainer(spec);
    } catch (err) {
      if (statusOf(err) !== 409) throw err; // 409: a retry of this create made it already
    }
    // Booting (or made ready meanwhile by a racing attempt of this boot).
    const info =
      (await this.inspect(this.name(memberId, 'booting'))) ?? (await this.inspect(this.name(memberId, 'ready')));
    if (!info) throw new Error(`pool member ${memberId} is gone (claimed or retired) while it was being created`);
    const handle = await this.host.handleOf(info, false);
    return { member: (await this.members()).find((m) => m.memberId === memberId)!, url: handle.url };
  }

  /** A container of this member under another name than a member's (its lock, or itself claimed and renamed). */
  private async taken(memberId: string): Promise<boolean> {
    const label = [
      `${LABELS.pool}=${this.poolName}`,
      `${LABELS.poolMember}=${memberId}`,
      ...ownerFilter(this.ownership),
    ];
    const mine = (await this.host.docker.listContainers({ all: true, filters: { label } })).filter((c) =>
      ownedBy(this.ownership, c.Labels[LABELS.owner]),
    );
    return mine.some((c) => !STATES.some((s) => c.Names.includes(`/${this.name(memberId, s)}`)));
  }

  async markReady(memberId: string): Promise<boolean> {
    if (
      (await renameContainer(this.host.docker, this.name(memberId, 'booting'), this.name(memberId, 'ready'))) === 'done'
    )
      return true;
    return (await this.inspect(this.name(memberId, 'ready'))) !== undefined; // an earlier attempt made it ready
  }

  async memberUrl(memberId: string): Promise<string | undefined> {
    for (const state of STATES) {
      const info = await this.inspect(this.name(memberId, state));
      if (info) return info.State.Running ? (await this.host.handleOf(info, true)).url : undefined;
    }
    return undefined;
  }

  async retire(memberId: string): Promise<boolean> {
    if (!(await this.locks.take(memberId, 'retire'))) {
      // Held: claimed by a start (then it is that conversation's), or by an earlier retire that did not finish.
      if ((await this.claimLabels(memberId))?.[LOCK_LABEL] !== 'retire') return false;
    }
    const member = (await this.members()).find((m) => m.memberId === memberId);
    if (member) await this.host.docker.getContainer(member.runtimeId).remove({ force: true, v: true });
    await removeVolumeWhenFree(this.host.docker, poolVolumeName(this.poolName, memberId, this.prefix));
    await this.unlock(memberId);
    return member !== undefined;
  }

  async hostMemoryMb(): Promise<number> {
    return Math.floor((await this.host.docker.info()).MemTotal / 1024 / 1024);
  }

  sibling(poolName: string): DockerPool {
    return poolName === this.poolName ? this : new DockerPool(this.host, { poolName, poolPrefix: this.prefix });
  }

  ineligible(spec: RuntimeSpec): string | undefined {
    return poolIneligible(spec);
  }

  /** Take a ready member: lock it, rename it to the conversation's, apply its limits; undefined: none (start cold). */
  async claim(spec: RuntimeSpec): Promise<RuntimeHandle | undefined> {
    return this.take(spec, await this.candidates(spec));
  }

  /**
   * The ready members a claim tries, in order (reads only: a caller may run them beside its own), from a random one so
   * concurrent claimants mostly differ; first the member an earlier attempt of this start locked, to finish that claim.
   */
  async candidates(spec: RuntimeSpec): Promise<Candidates> {
    // Limits the image cannot run with are refused before a member is touched (else it is renamed, then burnt).
    const [manifest, members, own] = await Promise.all([
      this.host.requirements(),
      this.members(),
      this.locks.lockedBy(spec),
    ]);
    resolveMemoryMb(spec, this.host.defaults, manifest);
    const ready = members.filter((m) => m.state === 'ready' && m.containerState === 'running');
    const offset = Math.floor(Math.random() * ready.length);
    const order = ready
      .map((_, i) => ready[(offset + i) % ready.length])
      .sort((a, b) => +(b.memberId === own) - +(a.memberId === own));
    return { order, own };
  }

  /** Claim the first of the candidates this start can lock and rename. */
  async take(spec: RuntimeSpec, { order, own }: Candidates): Promise<RuntimeHandle | undefined> {
    const target = containerName(spec.conversationId, this.host.convPrefix);
    for (const m of order) {
      const ours = m.memberId === own;
      // The keys its server takes at init (a V1 member's), made now and kept with the claim.
      if (!ours && !(await this.locks.take(m.memberId, 'claim', spec, newConversationKeys()))) continue; // another took it
      const renamed = await renameContainer(this.host.docker, m.name, target);
      if (renamed !== 'done') {
        // Ours, or locked here and renamed first by a retry of this start that found the lock: the lock is that
        // claim's record (a V1 member's keys) and stays. Taken: this conversation's container exists; create adopts it.
        const finished = !ours && (await this.inspect(target))?.Id === m.runtimeId;
        if (!ours && !finished) await this.unlock(m.memberId);
        if (renamed === 'taken' || ours || finished) return undefined;
        continue; // retired before we locked it
      }
      // One inspect serves the limits (only what differs is updated) and the handle (address, key: unchanged by it).
      const c = this.host.docker.getContainer(m.runtimeId);
      const [info, manifest] = await Promise.all([c.inspect(), this.host.requirements()]);
      await applyLimits(this.host.docker, m.runtimeId, spec, this.host.defaults, manifest, info.HostConfig);
      return { ...(await this.host.handleOf(info, false)), startPath: 'pool' };
    }
    return undefined;
  }

  /**
   * The keys a claimed V1 member's server was given at init, kept in its lock's environment (the lock lives as long as
   * the sandbox, never runs, and Docker shows its environment only to whoever may inspect the sandbox's own); undefined
   * for a sandbox that is not a deferred-init member (its keys are in its own environment).
   */
  async conversationKeys(info: Docker.ContainerInspectInfo): Promise<ConversationKeys | undefined> {
    const memberId = info.Config.Labels?.[LABELS.poolMember];
    const pool = info.Config.Labels?.[LABELS.pool];
    if (!memberId || !pool || !bootsDormant(info)) return undefined;
    // Not claimed yet (still named as a member): the member's own key, from its environment.
    const name = info.Name.replace(/^\//, '');
    if (STATES.some((s) => name === poolMemberName(pool, memberId, s, this.prefix))) return undefined;
    const keys = keysOfLock(await this.locks.inspect(memberId, pool));
    if (keys) return keys;
    throw new NestorError(
      ErrorType.RuntimeStartFailed,
      `pool member ${memberId} (${name}) has no claim holding its conversation's keys`,
      false,
    );
  }

  /**
   * Give a claimed V1 member's dormant server its conversation's keys (POST /api/init, authorized by the member's own
   * init key), once after the claim and again after every restart (the server forgets its init). Idempotent: a server
   * already initialized is left alone; one initializing (a racing attempt) is waited for.
   */
  async initialize(info: Docker.ContainerInspectInfo, url: string): Promise<void> {
    const keys = await this.conversationKeys(info);
    if (keys) await initializeServer(url, envOf(info, SECRET_KEY_ENV) ?? '', keys);
  }

  /** A claimed member's conversation labels (from its lock), for the owner and incarnation checks. */
  async claimLabels(memberId: string): Promise<Record<string, string> | undefined> {
    return (await this.locks.inspect(memberId))?.Config.Labels ?? undefined;
  }

  /** Remove a member's lock (with its sandbox, once the conversation is removed). */
  unlock(memberId: string): Promise<void> {
    return this.locks.release(memberId);
  }

  private inspect(name: string): Promise<Docker.ContainerInspectInfo | undefined> {
    return inspectContainer(this.host.docker, name);
  }
}
