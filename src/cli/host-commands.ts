// The commands for sandbox hosts: list the registered hosts with their load, drain one (no new placements; its
// conversations stay until they close: their data is on its local volumes) or take it back.
import type { Command } from 'commander';
import { ErrorType, NestorError } from '../errors';
import { listHosts, setHostDraining } from '../sandbox-hosts/hosts';
import { HOST_ID_PATTERN, hostLoad, type HostRecord } from '../sandbox-hosts/messages';
import { withClient } from './connect';
import { print } from './output';

function describe(h: HostRecord): string {
  const state = h.lost ? `lost: ${h.lost}` : h.draining ? 'draining' : 'open';
  return `${h.hostId}\t${hostLoad(h)}/${h.capacity}\t${state}\t${h.taskQueue}`;
}

function hostIdOf(raw: string): string {
  if (!HOST_ID_PATTERN.test(raw))
    throw new NestorError(
      ErrorType.InvalidInput,
      `hostId: expected lower-case letters, digits and '-', got '${raw}'`,
      false,
    );
  return raw;
}

export function addHostCommands(program: Command): void {
  const host = program.command('host').description('sandbox hosts: Docker engines with a host worker each');
  host
    .command('list')
    .description('registered hosts: conversations placed / capacity, open, draining or lost, task queue')
    .action(async (_o, cmd) => {
      const hosts = await withClient((c, config) => listHosts(c.client, config.sandboxHosts.registryShards));
      print(hosts, cmd.optsWithGlobals().json, () =>
        hosts.length ? hosts.map(describe).join('\n') : 'no host registered',
      );
    });
  for (const [name, draining, what] of [
    ['drain', true, 'place no new sandbox on this host (its conversations stay until they close)'],
    ['undrain', false, 'place new sandboxes on this host again'],
  ] as const)
    host
      .command(`${name} <hostId>`)
      .description(what)
      .action(async (raw: string, _o, cmd) => {
        const h = await withClient((c, config) =>
          setHostDraining(c.client, hostIdOf(raw), draining, config.sandboxHosts.registryShards),
        );
        print(h, cmd.optsWithGlobals().json, () => describe(h));
      });
}
