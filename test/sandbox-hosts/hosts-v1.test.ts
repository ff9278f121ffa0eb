// A sandbox host running the current agent server (V1): its host worker has NESTOR_RUNTIME=openhands, the
// conversations' worker none of its own, so placement, the steps on the host, pause, resume and close all meet the real
// V1 image through the registry (the agent's LLM is the stand-in).
// needs: temporal, docker, openhands
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { ConversationClient } from '../../src/conversation/client';
import { DockerRuntimeProvider } from '../../src/runtime/docker';
import type { LlmStandIn } from '../../src/llm-stand-in/server';
import { REPLY_PREFIX } from '../../src/llm-stand-in/server';
import { listHosts } from '../../src/sandbox-hosts/hosts';
import { containersFor, logsOnFailure, volumesFor } from '../helpers/docker';
import { e2eInput, startE2e, type E2e } from '../helpers/e2e';
import { HostWorkers } from '../helpers/host-worker';
import { eventsUntil, said } from '../helpers/agent-server';
import { AGENT_SERVER_IMAGE, standInSettings, startStandInForSandboxes } from '../helpers/openhands';
import { uniqueId } from '../helpers/temporal';

describe('a sandbox host running the current agent server (V1)', { timeout: 600_000 }, () => {
  let lab: E2e;
  let client: ConversationClient;
  let hosts: HostWorkers;
  let llm: LlmStandIn;
  const made = new Set<string>();
  const base = e2eInput(made);

  before(async () => {
    llm = await startStandInForSandboxes(new DockerRuntimeProvider({ image: AGENT_SERVER_IMAGE }));
    lab = await startE2e(made, { sandboxHosts: true });
    client = logsOnFailure(lab.client);
    hosts = new HostWorkers({ address: lab.env.address, taskQueue: lab.taskQueue, client: lab.env.client });
    await hosts.start('v1-host', { runtime: 'openhands' });
  });

  after(async () => {
    await hosts?.killAll();
    await lab?.stop();
    await llm?.close();
  });

  test('placed on the host, answered, paused, resumed and closed on V1; the host is left with nothing', async () => {
    const id = uniqueId('v1-hosted');
    const info = await client.start(
      base(id, {
        settings: standInSettings(llm),
        customSecrets: [],
        initialMessage: 'hello from a host',
        timeouts: { aliveTimeoutMs: 180_000, readyTimeoutMs: 120_000 },
      }),
    );
    assert.equal(info.status, 'RUNNING');
    assert.equal(info.sandboxHost, 'v1-host');
    assert.equal(info.protocol, 'v1', "the host's image decides the protocol");
    await eventsUntil(info, (e) => said(e, 'agent').includes(`${REPLY_PREFIX}hello from a host`));

    await client.pause(id);
    assert.equal((await client.resume(id)).status, 'RUNNING');
    await client.sendMessage(id, 'after the resume');
    const live = await client.connection(id);
    const events = await eventsUntil(live, (e) => said(e, 'agent').includes(`${REPLY_PREFIX}after the resume`));
    assert.deepEqual(said(events, 'user'), ['hello from a host', 'after the resume'], 'each message once');

    assert.equal((await client.close(id)).status, 'STOPPED');
    assert.deepEqual(await containersFor(id), []);
    assert.deepEqual(await volumesFor(id), []);
    const [host] = await listHosts(lab.env.client);
    assert.deepEqual(host.placed, [], 'the placement is released');
  });
});
