// Docker runtime provider: one labelled container per conversation, found again by its name.
import { randomBytes } from 'node:crypto';
import Docker from 'dockerode';
import { LABELS } from '../shared/constants';
import { ErrorType, NestorError } from '../errors';
import type { RuntimeHandle, RuntimeProvider, RuntimeSpec, RuntimeSummary } from './provider';
import { manifestFromLabels, type ImageManifest } from './image-manifest';
import {
  SandboxNetworks,
  applyLimits,
  demux,
  handleOf,
  inspectContainer,
  imageNotFound,
  diagnoseContainer,
  inspectVolume,
  removeVolumeWhenFree,
  statusOf,
} from './docker-parts';
import { createNamedContainer } from './docker-create';
import { DockerPool } from './docker-pool';
import { LOCK_LABEL, removeLock } from './pool-locks';
import { buildContainerSpec, containerName, poolVolumeName, volumeName, type SandboxDefaults } from './container-spec';
import { claimOf, runtimeSummary, ownedBy, ownerFilter, type Owner } from './ownership';

export { demux };

export interface DockerProviderOptions {
  image: string;
  /** dockerode instance; @default one on the local socket (DOCKER_HOST honoured) */
  docker?: Docker;
  /** Container name prefix. @default 'nestor-conv-' */
  namePrefix?: string;
  /** Defaults when the settings name no limit. @default DEFAULT_LIMITS, memory from the image's manifest */
  defaults?: Partial<SandboxDefaults>;
  /**
   * Which nestor service owns the containers (its NESTOR_SERVICE_ID), as label `nestor.owner`; `list` then sees only
   * those, so services sharing a Docker engine never reap each other's sandboxes. @default no owner label, list all
   */
  owner?: string;
  /** Owner labels earlier versions wrote for this same service: their sandboxes are still its own. */
  formerOwner?: (label: string) => boolean;
  /** Warm pool: its name (@default from the image) and members' name prefix (@default 'nestor-pool-'). */
  pool?: { name?: string; prefix?: string };
}

export class DockerRuntimeProvider implements RuntimeProvider {
  readonly kind = 'docker';
  readonly docker: Docker;
  private readonly prefix: string;
  private readonly networks: SandboxNetworks;
  private manifestRead?: Promise<ImageManifest>;
  readonly pool: DockerPool;
  private readonly ownership: Owner;

  constructor(private readonly opts: DockerProviderOptions) {
    this.docker = opts.docker ?? new Docker();
    this.prefix = opts.namePrefix ?? 'nestor-conv-';
    this.ownership = { id: opts.owner, formerly: opts.formerOwner };
    this.networks = new SandboxNetworks(this.docker);
    this.pool = new DockerPool(
      {
        docker: this.docker,
        image: opts.image,
        owner: opts.owner,
        formerOwner: opts.formerOwner,
        convPrefix: this.prefix,
        defaults: opts.defaults,
        networks: this.networks,
        requirements: () => this.requirements(),
        handleOf: (info, adopted) => this.adopt(info, adopted),
      },
      { poolName: opts.pool?.name, poolPrefix: opts.pool?.prefix },
    );
  }

  /** The image's needs, from its labels; read once. A missing image is RuntimeImageNotFound. */
  requirements(): Promise<ImageManifest> {
    this.manifestRead ??= this.docker
      .getImage(this.opts.image)
      .inspect()
      .then((img) => manifestFromLabels(this.opts.image, img.Config?.Labels))
      .catch((err) => {
        this.manifestRead = undefined; // built later (npm run setup): read again next time
        if (statusOf(err) === 404) throw imageNotFound(this.opts.image);
        throw err;
      });
    return this.manifestRead;
  }

  async create(spec: RuntimeSpec): Promise<RuntimeHandle> {
    const name = containerName(spec.conversationId, this.prefix);
    const existing = await this.inspectRaw(name);
    if (existing) {
      // This start's own container (an earlier attempt made it): adopt it. An earlier life's: remove it, with its data.
      const own = await this.adoptOwn(existing, spec);
      if (own) return own;
      await this.remove(spec.conversationId);
    }
    const coldReason = this.pool.ineligible(spec);
    const pooled = coldReason ? undefined : await this.pool.claim(spec);
    if (pooled) return pooled;
    return this.createCold(spec, name, coldReason ?? 'the pool had no ready sandbox');
  }

  async claim(spec: RuntimeSpec): Promise<RuntimeHandle | undefined> {
    // The conversation's own container looked for beside the pool's reads (the claim itself only after it).
    const eligible = !this.pool.ineligible(spec);
    const [existing, candidates] = await Promise.all([
      this.inspectRaw(containerName(spec.conversationId, this.prefix)),
      eligible ? this.pool.candidates(spec) : undefined,
    ]);
    // A member an earlier attempt of this claim took is adopted; anything else there (an earlier life's container) is
    // left for create, which runs after the slot is granted and removes it.
    if (existing) return existing.Config.Labels?.[LABELS.pool] ? this.adoptOwn(existing, spec) : undefined;
    return candidates && this.pool.take(spec, candidates);
  }

  /** The conversation's container, adopted when it is this start's own (an earlier attempt made or claimed it). */
  private async adoptOwn(existing: Docker.ContainerInspectInfo, spec: RuntimeSpec): Promise<RuntimeHandle | undefined> {
    const name = containerName(spec.conversationId, this.prefix);
    if (claimOf(name, await this.labelsOf(existing), this.ownership, spec.incarnation) !== 'own') return undefined;
    const pooled = !!existing.Config.Labels?.[LABELS.pool];
    // A claimed member took the conversation's limits after its rename: an attempt that died in between did not.
    if (pooled)
      await applyLimits(
        this.docker,
        existing.Id,
        spec,
        this.opts.defaults,
        await this.requirements(),
        existing.HostConfig,
      );
    return { ...(await this.adopt(existing)), startPath: pooled ? 'pool' : 'cold' };
  }

  private async createCold(spec: RuntimeSpec, name: string, coldReason: string): Promise<RuntimeHandle> {
    const manifest = await this.requirements();
    const sessionApiKey = randomBytes(32).toString('base64url');
    await this.networks.ensure(spec.egress ?? true);
    await this.freshVolume(spec);
    // Labelled, so every volume nestor makes is accounted for like its containers. Creating an existing one is a no-op.
    await this.docker.createVolume({
      Name: volumeName(spec.conversationId, this.prefix),
      Labels: {
        [LABELS.managed]: 'true',
        [LABELS.conversationId]: spec.conversationId,
        [LABELS.userId]: spec.userId,
        ...(this.opts.owner && { [LABELS.owner]: this.opts.owner }),
        ...(spec.incarnation && { [LABELS.incarnation]: spec.incarnation }),
      },
    });
    const createOpts = buildContainerSpec(spec, {
      image: this.opts.image,
      sessionApiKey,
      secretKey: randomBytes(32).toString('base64url'),
      namePrefix: this.prefix,
      defaults: this.opts.defaults,
      owner: this.opts.owner,
      manifest,
    });
    const { info, raced } = await createNamedContainer(
      {
        docker: this.docker,
        name,
        image: this.opts.image,
        networks: this.networks,
        isOwn: async (c) => claimOf(name, await this.labelsOf(c), this.ownership, spec.incarnation) === 'own',
      },
      createOpts,
    );
    if (raced) return this.adopt(info);
    return { ...(await this.adopt(info, false)), startPath: 'cold', coldReason };
  }

  async initialize(conversationId: string): Promise<void> {
    const info = await this.inspectRaw(containerName(conversationId, this.prefix));
    if (!info || !(await this.pool.conversationKeys(info))) return;
    await this.pool.initialize(info, (await this.adopt(info)).url);
  }

  async pause(conversationId: string): Promise<void> {
    const c = this.docker.getContainer(containerName(conversationId, this.prefix));
    try {
      await c.stop({ t: 10 });
    } catch (err) {
      if (statusOf(err) !== 304) throw err; // 304: already stopped
    }
  }

  async resume(conversationId: string, incarnation?: string): Promise<RuntimeHandle> {
    const name = containerName(conversationId, this.prefix);
    const info = await this.inspectRaw(name);
    if (!info)
      throw new NestorError(
        ErrorType.RuntimeStartFailed,
        `no container for conversation ${conversationId} to resume`,
        false,
      );
    // Containers made before incarnation labels existed carry none: theirs to resume.
    const labels = await this.labelsOf(info);
    const theirs = labels?.[LABELS.incarnation];
    if (claimOf(name, labels, this.ownership, theirs === undefined ? undefined : incarnation) !== 'own') {
      throw new NestorError(
        ErrorType.RuntimeStartFailed,
        `container ${name} belongs to another life of conversation ${conversationId} (incarnation ${theirs}); it is not resumed`,
        false,
      );
    }
    return this.adopt(info);
  }

  /** A volume left by an earlier life of the conversation ID (its file store, secrets, settings) is removed first. */
  private async freshVolume(spec: RuntimeSpec): Promise<void> {
    const name = volumeName(spec.conversationId, this.prefix);
    const vol = await inspectVolume(this.docker, name);
    if (!vol || claimOf(name, vol.Labels ?? undefined, this.ownership, spec.incarnation) === 'own') return;
    await this.docker.getVolume(name).remove();
  }

  /** Remove the container and then its data volume (a pooled one's: the volume it was made with) and claim marker. */
  async remove(conversationId: string): Promise<boolean> {
    const name = containerName(conversationId, this.prefix);
    let removed = true;
    const volumes = [volumeName(conversationId, this.prefix)];
    try {
      const c = this.docker.getContainer(name);
      volumes.push(
        ...((await c.inspect()).Mounts ?? []).flatMap((m) => (m.Type === 'volume' && m.Name ? [m.Name] : [])),
      );
      await c.remove({ force: true, v: true });
    } catch (err) {
      if (statusOf(err) === 404) removed = false;
      else if (!(statusOf(err) === 409 && /already in progress/.test((err as Error).message))) throw err;
    }
    // A pooled sandbox's lock (its claim record), found by the conversation it names. It goes last: it names the
    // member's volume, so a removal retried after the container went still removes that volume.
    const label = [`${LOCK_LABEL}=claim`, `${LABELS.conversationId}=${conversationId}`];
    const locks = await this.docker.listContainers({ all: true, filters: { label } });
    for (const l of locks)
      volumes.push(poolVolumeName(l.Labels[LABELS.pool], l.Labels[LABELS.poolMember], this.pool.prefix));
    for (const v of new Set(volumes)) await removeVolumeWhenFree(this.docker, v);
    for (const lock of locks) await removeLock(this.docker, lock.Id);
    return removed;
  }

  /** A container's conversation labels: its own, or for a claimed pool member those of its claim marker. */
  private async labelsOf(info: Docker.ContainerInspectInfo): Promise<Record<string, string> | undefined> {
    const labels = info.Config.Labels ?? undefined;
    if (!labels?.[LABELS.pool]) return labels;
    return (await this.pool.claimLabels(labels[LABELS.poolMember] ?? '')) ?? { ...labels, [LABELS.incarnation]: '?' };
  }

  async inspect(conversationId: string): Promise<RuntimeSummary | undefined> {
    const info = await this.inspectRaw(containerName(conversationId, this.prefix));
    return (
      info && runtimeSummary(this.prefix, info.Id, info.Name, info.Config.Labels ?? {}, info.State.Status, info.Created)
    );
  }

  async list(): Promise<RuntimeSummary[]> {
    const label = [`${LABELS.managed}=true`, ...ownerFilter(this.ownership)];
    const all = await this.docker.listContainers({ all: true, filters: { label } });
    // A pool member's lock is never started and goes with its sandbox: not a runtime of its own.
    return all
      .filter((c) => !c.Labels[LOCK_LABEL] && ownedBy(this.ownership, c.Labels[LABELS.owner]))
      .map((c) =>
        runtimeSummary(
          this.prefix,
          c.Id,
          c.Names[0] ?? '',
          c.Labels,
          c.State,
          new Date(c.Created * 1000).toISOString(),
        ),
      );
  }

  diagnose(conversationId: string): Promise<string> {
    return diagnoseContainer(this.docker, containerName(conversationId, this.prefix));
  }

  private async adopt(info: Docker.ContainerInspectInfo, adopted = true): Promise<RuntimeHandle> {
    return handleOf(this.docker, info, adopted, await this.pool.conversationKeys(info));
  }

  /**
   * The host's address on a sandbox network (its bridge gateway): the one address of this machine a sandbox can reach,
   * so a service for sandboxes (e.g. the LLM stand-in) binds there. The network is created if missing.
   */
  sandboxGateway(egress = true): Promise<string> {
    return this.networks.gateway(egress);
  }

  private inspectRaw(name: string): Promise<Docker.ContainerInspectInfo | undefined> {
    return inspectContainer(this.docker, name);
  }
}
