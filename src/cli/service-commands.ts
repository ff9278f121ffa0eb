// The commands that run parts of the service: worker, host-worker, dev, cluster, kubernetes, llm-stand-in, codec-server.
import type { Command } from 'commander';
import { loadConfig } from '../config';
import { runDev, codecGuard, codecServer } from '../dev';
import { runCluster } from '../dev/run-cluster';
import { runKubernetes } from '../dev/run-kubernetes';
import { DockerRuntimeProvider } from '../runtime/docker';
import { SANDBOX_NETWORK } from '../runtime/container-spec';
import { FINISH_MARKER, startLlmStandIn } from '../llm-stand-in/server';
import { runWorker } from '../worker';
import { runHostWorker } from '../host-worker';
import { portNumber } from './output';

export function addServiceCommands(program: Command): void {
  program
    .command('worker')
    .description('run a worker against TEMPORAL_ADDRESS (default 127.0.0.1:7233)')
    .action(async () => {
      await runWorker(loadConfig());
    });

  program
    .command('host-worker')
    .description(
      "run a sandbox host's worker beside its Docker engine (NESTOR_HOST_ID, NESTOR_HOST_CAPACITY, DOCKER_HOST): registers the host and serves its sandboxes' steps",
    )
    .action(async () => {
      await runHostWorker(loadConfig());
    });

  program
    .command('llm-stand-in')
    .description(
      "serve a scripted OpenAI-compatible LLM where sandboxes reach it (the sandbox network's gateway), for trying the real agent offline",
    )
    .option('-p, --port <port>', 'port (0: any free one)', portNumber, 0)
    .action(async (o) => {
      const c = loadConfig();
      const host = await new DockerRuntimeProvider({ image: c.runtimeImage }).sandboxGateway();
      const llm = await startLlmStandIn({ host, port: o.port });
      console.log(
        [
          `LLM stand-in on ${llm.baseUrl} (reachable from sandboxes on ${SANDBOX_NETWORK}, not from other hosts)`,
          `  LLM_API_KEY=sk-stand-in npx nestor start -c demo-1 -u alice --model openai/stand-in --base-url ${llm.baseUrl} -m "hello"`,
          `  model openai/stand-in-error: every call fails (401); a message containing ${FINISH_MARKER}: the agent finishes`,
        ].join('\n'),
      );
      await untilStopped();
      await llm.close();
    });

  program
    .command('codec-server')
    .description('serve /encode and /decode for the Temporal UI, so it shows payloads decrypted (127.0.0.1 only)')
    .option('-p, --port <port>', 'port (default NESTOR_CODEC_PORT, 8234)', portNumber)
    .action(async (o) => {
      const c = loadConfig();
      const server = await codecServer(c, { port: o.port });
      console.error(`codec server on ${server.url} for ${c.codec.corsOrigins.join(', ')}; ${codecGuard(c)}`);
      await untilStopped();
      await server.close();
    });

  program
    .command('dev')
    .description('run the whole service: Temporal dev server (unless TEMPORAL_ADDRESS is set) and a worker')
    .action(() => runDev(loadConfig()));

  program
    .command('cluster')
    .description(
      'run the whole service on a real Temporal cluster here: PostgreSQL, two temporal-server processes, the UI, a worker per frontend',
    )
    .action(() => runCluster(loadConfig()));

  program
    .command('kubernetes')
    .description(
      'run a real single-node Kubernetes here (etcd, containerd, the API server, controller manager, scheduler, kubelet) with the runtime image imported',
    )
    .action(() => runKubernetes(loadConfig()));
}

/** Until Ctrl-C (SIGINT) or SIGTERM. */
function untilStopped(): Promise<void> {
  return new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
}
