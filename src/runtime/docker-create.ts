// Creating a conversation's named container, and what Docker's refusals mean: a name already taken by a retry racing
// this attempt (its container adopted once Docker shows it), a network deleted under us, an image not there.
import type Docker from 'dockerode';
import { ErrorType, NestorError } from '../errors';
import { imageNotFound, inspectContainer, statusOf, type SandboxNetworks } from './docker-parts';

export interface NamedCreate {
  docker: Docker;
  name: string;
  image: string;
  networks: SandboxNetworks;
  /** Whether a container found under the name is this start's own (made by an earlier attempt of it). */
  isOwn: (info: Docker.ContainerInspectInfo) => Promise<boolean>;
}

/** Create the container; `raced` when a racing attempt of the same start had made it (adopt it, it is ours). */
export async function createNamedContainer(
  o: NamedCreate,
  createOpts: Docker.ContainerCreateOptions,
): Promise<{ info: Docker.ContainerInspectInfo; raced: boolean }> {
  try {
    await o.docker.createContainer(createOpts);
  } catch (err) {
    const status = statusOf(err);
    if (status === 409) {
      // Someone (a retry racing the first attempt) is creating it: adopt it once Docker shows it. Docker holds the
      // name before the container can be inspected, so wait briefly for it to appear.
      for (let wait = 20; wait <= 2000; wait *= 2) {
        const raced = await inspectContainer(o.docker, o.name);
        if (raced && (await o.isOwn(raced))) return { info: raced, raced: true };
        if (raced)
          throw new NestorError(
            ErrorType.RuntimeStartFailed,
            `container ${o.name} was created meanwhile by another life of the conversation`,
            true,
          );
        await new Promise((r) => setTimeout(r, wait));
      }
    }
    if (status === 404 && !/no such image/i.test((err as Error).message)) {
      // The network went away under us (deleted by hand): make it again on the next attempt.
      o.networks.forget();
      throw new NestorError(
        ErrorType.RuntimeStartFailed,
        `creating container ${o.name} failed: ${(err as Error).message}`,
        true,
      );
    }
    if (status === 404) throw imageNotFound(o.image);
    throw new NestorError(
      ErrorType.RuntimeStartFailed,
      `creating container ${o.name} failed: ${(err as Error).message}`,
      true,
    );
  }
  const created = await inspectContainer(o.docker, o.name);
  if (!created)
    throw new NestorError(ErrorType.RuntimeStartFailed, `container ${o.name} vanished right after creation`, true);
  return { info: created, raced: false };
}
