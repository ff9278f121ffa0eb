// The real OpenHands runtime image and the LLM stand-in, for the tests that run the published server: the stand-in
// listens on the sandbox network's gateway, the one address of this machine a sandbox can reach.
import { DockerRuntimeProvider } from '../../src/runtime/docker';
import { RUNTIME_IMAGES } from '../../src/runtime/image-manifest';
import { startLlmStandIn, type LlmStandIn } from '../../src/llm-stand-in/server';
import type { UserSettings } from '../../src/shared/schemas';

export const OPENHANDS_IMAGE = RUNTIME_IMAGES['openhands-v0'];
/** The current agent server (V1). */
export const AGENT_SERVER_IMAGE = RUNTIME_IMAGES.openhands;
export const EMULATOR_IMAGE = RUNTIME_IMAGES.emulator;

/** The stand-in on the gateway of the sandboxes' network (created if missing). */
export async function startStandInForSandboxes(provider: DockerRuntimeProvider): Promise<LlmStandIn> {
  return startLlmStandIn({ host: await provider.sandboxGateway() });
}

/** Settings that point the agent at the stand-in; `error: true` makes every LLM call fail with a 401. */
export function standInSettings(llm: LlmStandIn, o: { error?: boolean } = {}): UserSettings {
  return {
    agent: 'CodeActAgent',
    llmModel: o.error ? 'openai/stand-in-error' : 'openai/stand-in',
    llmApiKey: 'sk-stand-in-key',
    llmBaseUrl: llm.baseUrl,
  };
}
