// Docker runtime provider: one labelled container per conversation, found again by its name.
import { randomBytes } from 'node:crypto';
import Docker from 'dockerode';
import { LABELS } from '../shared/constants';
import { ErrorType, NestorError } from '../errors';
import type { RuntimeHandle, RuntimeProvider, RuntimeSpec, RuntimeSummary } from './provider';
import { UNLABELLED_MANIFEST, manifestFromLabels, type ImageManifest } from './image-manifest';
import { SandboxNetworks, demux, imageNotFound, lastLogLines, statusOf } from './docker-parts';
import {
  SANDBOX_NETWORK_INTERNAL,
  buildContainerSpec,
  claimOf,
  containerName,
  volumeName,
  type SandboxDefaults,
} from './container-spec';

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
   * Which Temporal service owns the containers (`<address>/<namespace>`), as label `nestor.owner`; `list` then sees
   * only those, so services sharing a Docker engine never reap each other's sandboxes. @default no owner label, list all
   */
  owner?: string;
}

export class DockerRuntimeProvider implements RuntimeProvider {
  readonly kind = 'docker';
  readonly docker: Docker;
  private readonly prefix: string;
  private readonly networks: SandboxNetworks;
  private manifestRead?: Promise<ImageManifest>;

  constructor(private readonly opts: DockerProviderOptions) {
    this.docker = opts.docker ?? new Docker();
    this.prefix = opts.namePrefix ?? 'nestor-conv-';
    this.networks = new SandboxNetworks(this.docker);
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
      if (claimOf(name, existing.Config.Labels, this.opts.owner, spec.incarnation) === 'own')
        return this.adopt(existing);
      await this.remove(spec.conversationId);
    }
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
      namePrefix: this.prefix,
      defaults: this.opts.defaults,
      owner: this.opts.owner,
      manifest,
    });
    try {
      await this.docker.createContainer(createOpts);
    } catch (err) {
      const status = statusOf(err);
      if (status === 409) {
        // Someone (a retry racing the first attempt) is creating it: adopt it once Docker shows it. Docker holds the
        // name before the container can be inspected, so wait briefly for it to appear.
        for (let wait = 20; wait <= 2000; wait *= 2) {
          const raced = await this.inspectRaw(name);
          if (raced && claimOf(name, raced.Config.Labels, this.opts.owner, spec.incarnation) === 'own')
            return this.adopt(raced);
          if (raced)
            throw new NestorError(
              ErrorType.RuntimeStartFailed,
              `container ${name} was created meanwhile by another life of the conversation`,
              true,
            );
          await new Promise((r) => setTimeout(r, wait));
        }
      }
      if (status === 404 && !/no such image/i.test((err as Error).message)) {
        // The network went away under us (deleted by hand): make it again on the next attempt.
        this.networks.forget();
        throw new NestorError(
          ErrorType.RuntimeStartFailed,
          `creating container ${name} failed: ${(err as Error).message}`,
          true,
        );
      }
      if (status === 404) throw imageNotFound(this.opts.image);
      throw new NestorError(
        ErrorType.RuntimeStartFailed,
        `creating container ${name} failed: ${(err as Error).message}`,
        true,
      );
    }
    const created = await this.inspectRaw(name);
    if (!created)
      throw new NestorError(ErrorType.RuntimeStartFailed, `container ${name} vanished right after creation`, true);
    return this.adopt(created, false);
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
    const theirs = info.Config.Labels?.[LABELS.incarnation];
    if (claimOf(name, info.Config.Labels, this.opts.owner, theirs === undefined ? undefined : incarnation) !== 'own') {
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
    const vol = await this.docker
      .getVolume(name)
      .inspect()
      .catch((err) => {
        if (statusOf(err) === 404) return undefined;
        throw err;
      });
    if (!vol || claimOf(name, vol.Labels ?? undefined, this.opts.owner, spec.incarnation) === 'own') return;
    await this.docker.getVolume(name).remove();
  }

  /** Remove the container and then its data volume. */
  async remove(conversationId: string): Promise<boolean> {
    let removed = true;
    try {
      await this.docker.getContainer(containerName(conversationId, this.prefix)).remove({ force: true, v: true });
    } catch (err) {
      if (statusOf(err) === 404) removed = false;
      else if (!(statusOf(err) === 409 && /already in progress/.test((err as Error).message))) throw err;
    }
    // The volume is freed a moment after a racing removal of its container: try again briefly while it is in use.
    for (let attempt = 1; ; attempt++) {
      try {
        await this.docker.getVolume(volumeName(conversationId, this.prefix)).remove();
        break;
      } catch (err) {
        if (statusOf(err) === 404) break;
        if (statusOf(err) !== 409 || attempt >= 20) throw err;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    return removed;
  }

  async inspect(conversationId: string): Promise<RuntimeSummary | undefined> {
    const info = await this.inspectRaw(containerName(conversationId, this.prefix));
    return (
      info && {
        runtimeId: info.Id,
        name: info.Name.replace(/^\//, ''),
        conversationId: info.Config.Labels?.[LABELS.conversationId] ?? '',
        userId: info.Config.Labels?.[LABELS.userId] ?? '',
        state: info.State.Status,
        createdAt: info.Created,
      }
    );
  }

  async list(): Promise<RuntimeSummary[]> {
    const label = [`${LABELS.managed}=true`, ...(this.opts.owner ? [`${LABELS.owner}=${this.opts.owner}`] : [])];
    const all = await this.docker.listContainers({ all: true, filters: { label } });
    return all.map((c) => ({
      runtimeId: c.Id,
      name: (c.Names[0] ?? '').replace(/^\//, ''),
      conversationId: c.Labels[LABELS.conversationId] ?? '',
      userId: c.Labels[LABELS.userId] ?? '',
      state: c.State,
      createdAt: new Date(c.Created * 1000).toISOString(),
    }));
  }

  async diagnose(conversationId: string): Promise<string> {
    const name = containerName(conversationId, this.prefix);
    const info = await this.inspectRaw(name);
    if (!info) return `container ${name} does not exist`;
    const logs = await lastLogLines(this.docker, name);
    return `container ${name} is ${info.State.Status} (exit code ${info.State.ExitCode})${logs ? `; last log lines: ${logs}` : ''}`;
  }

  /** Start the container if needed and read its URL and session key back from Docker. */
  private async adopt(info: Docker.ContainerInspectInfo, adopted = true): Promise<RuntimeHandle> {
    const name = info.Name.replace(/^\//, '');
    if (info.Config.Labels?.[LABELS.managed] !== 'true') {
      throw new NestorError(
        ErrorType.RuntimeStartFailed,
        `a container named ${name} exists but is not managed by nestor; remove or rename it`,
        false,
      );
    }
    const sessionApiKey = (info.Config.Env ?? [])
      .find((e) => e.startsWith('SESSION_API_KEY='))
      ?.slice('SESSION_API_KEY='.length);
    if (!sessionApiKey)
      throw new NestorError(ErrorType.RuntimeStartFailed, `container ${name} has no session API key`, false);
    if (!info.State.Running) {
      try {
        await this.docker.getContainer(info.Id).start();
      } catch (err) {
        if (statusOf(err) !== 304) {
          throw new NestorError(
            ErrorType.RuntimeStartFailed,
            `starting container ${name} failed: ${(err as Error).message}`,
            true,
          );
        }
      }
      info = await this.docker.getContainer(info.Id).inspect();
    }
    // The port the container was created with (its image's manifest), whatever image is configured now.
    const port = Object.keys(info.Config.ExposedPorts ?? {})[0] ?? `${UNLABELLED_MANIFEST.port}/tcp`;
    const binding = info.NetworkSettings.Ports?.[port]?.find((b) => b.HostIp === '127.0.0.1' && b.HostPort);
    if (binding) return { runtimeId: info.Id, url: `http://127.0.0.1:${binding.HostPort}`, sessionApiKey, adopted };
    // No egress: no published port; the sandbox is reached at its address on the internal bridge.
    const internalIp = info.NetworkSettings.Networks?.[SANDBOX_NETWORK_INTERNAL]?.IPAddress;
    if (internalIp)
      return { runtimeId: info.Id, url: `http://${internalIp}:${parseInt(port, 10)}`, sessionApiKey, adopted };
    throw new NestorError(
      ErrorType.RuntimeStartFailed,
      `container ${name} has no published port or internal address (state ${info.State.Status})`,
      true,
    );
  }

  /**
   * The host's address on a sandbox network (its bridge gateway): the one address of this machine a sandbox can reach,
   * so a service for sandboxes (e.g. the LLM stand-in) binds there. The network is created if missing.
   */
  sandboxGateway(egress = true): Promise<string> {
    return this.networks.gateway(egress);
  }

  private async inspectRaw(name: string): Promise<Docker.ContainerInspectInfo | undefined> {
    try {
      return await this.docker.getContainer(name).inspect();
    } catch (err) {
      if (statusOf(err) === 404) return undefined;
      throw err;
    }
  }
}
