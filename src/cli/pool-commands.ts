// The commands for warm pools: pool status, resize, disable, enable, drain. The pool is the configured runtime image's
// (NESTOR_RUNTIME / NESTOR_RUNTIME_IMAGE) unless --pool names another.
import type { Command } from 'commander';
import { loadConfig } from '../config';
import { ErrorType, NestorError } from '../errors';
import { poolNameFor } from '../runtime/container-spec';
import { drainPool, poolStatus, poolTaskQueue, resizePool, setPoolEnabled } from '../sandbox-pools/pools';
import { listHosts } from '../sandbox-hosts/hosts';
import type { PoolStatus } from '../sandbox-pools/messages';
import { withClient } from './connect';
import { print } from './output';

function describe(s: PoolStatus): string {
  const c = s.counters;
  const mode = s.draining ? 'draining' : s.enabled ? 'enabled' : 'disabled';
  return [
    `pool ${s.pool} (${mode}): ${s.ready} ready, ${s.booting} booting, target ${s.target} (size ${s.size})`,
    `claimed ${c.claimed}, created ${c.created}, replaced ${c.replaced}, failed ${c.failed}`,
    ...(s.lastError ? [`last error: ${s.lastError}`] : []),
    ...(s.lastTendedAt ? [`last checked ${s.lastTendedAt}`] : []),
  ].join('\n');
}

function parseSize(raw: string): number {
  const n = Number(raw);
  if (!/^\d+$/.test(raw) || !Number.isSafeInteger(n))
    throw new NestorError(ErrorType.InvalidInput, `size: expected a whole number ≥ 0, got '${raw}'`, false);
  return n;
}

export function addPoolCommands(program: Command): void {
  const pool = program
    .command('pool')
    .description('warm sandbox pools: members booted ahead so starts claim one instead of waiting for a boot')
    .option('--pool <name>', "the pool's name (default: the configured runtime image's)");
  const nameOf = (cmd: Command): string =>
    (cmd.optsWithGlobals().pool as string | undefined) ?? poolNameFor(loadConfig().runtimeImage);
  const show = (cmd: Command, s: PoolStatus) => print(s, cmd.optsWithGlobals().json, () => describe(s));

  pool
    .command('status')
    .description("the pool's size, ready and booting members, and what it has done")
    .action(async (_o, cmd) => show(cmd, await withClient((c) => poolStatus(c.client, nameOf(cmd)))));
  pool
    .command('resize <size>')
    .description('keep this many members ready (starts the pool if none runs; 0 empties it)')
    .action(async (raw: string, _o, cmd) => {
      const size = parseSize(raw);
      show(
        cmd,
        await withClient(async (c, config) => {
          // A host's pool (not running yet) is started on that host's queue, where its members' engine is.
          const hosts = (await listHosts(c.client, config.sandboxHosts.registryShards)).map((h) => h.hostId);
          const pool = nameOf(cmd);
          return resizePool(c.client, { taskQueue: poolTaskQueue(pool, hosts, c.taskQueue), pool, size });
        }),
      );
    });
  pool
    .command('disable')
    .description('remove the unclaimed members and make none (starts go cold); the size is kept for enable')
    .action(async (_o, cmd) => show(cmd, await withClient((c) => setPoolEnabled(c.client, nameOf(cmd), false))));
  pool
    .command('enable')
    .description('fill the pool to its size again')
    .action(async (_o, cmd) => show(cmd, await withClient((c) => setPoolEnabled(c.client, nameOf(cmd), true))));
  pool
    .command('drain')
    .description('remove every unclaimed member and end the pool (claimed ones stay with their conversations)')
    .action(async (_o, cmd) => show(cmd, await withClient((c) => drainPool(c.client, nameOf(cmd)))));
}
