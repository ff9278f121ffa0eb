// The nested server's steps of a bring-up that differ by protocol: the repository cloned before the conversation is
// created (the current agent server, V1), and the conversation created or reopened (V1 takes settings and secrets
// with it).
import type { Mode, ModePlan, PlanStep } from './bring-up';
import type { Run } from './run';

/** V1 only, on a start only: a resume finds the working tree on the conversation's volume. */
export function repositoryStep(r: Run, mode: Mode): PlanStep {
  const { conv, input } = r;
  return {
    name: 'prepareRepository',
    details: `cloning ${input.repository ?? ''}`,
    when: () => mode === 'start' && !!input.repository && conv.runtime?.protocol === 'v1',
    run: async () =>
      void (await r.acts.prepareRepository({
        ...conv.nestedTarget(),
        repository: input.repository!,
        branch: input.branch,
        gitProvider: input.gitProvider,
        providerTokens: conv.tokens,
        gitUserName: input.settings.gitUserName,
        gitUserEmail: input.settings.gitUserEmail,
      })),
  };
}

/** Create (or, on a resume, reopen) the nested conversation; V1 takes settings and secrets with it. */
export async function createStep(r: Run, m: ModePlan, acts: Pick<Run['acts'], 'createConversation'>): Promise<void> {
  const { conv, input } = r;
  const v1 = conv.runtime?.protocol === 'v1';
  const created = await acts.createConversation({
    ...conv.nestedTarget(),
    // V1 takes settings and secrets with the create (V0 took them in configureNestedServer).
    ...(v1 && { settings: input.settings, customSecrets: input.customSecrets, providerTokens: conv.tokens }),
    initialMessage: m.sendsInitialMessage ? input.initialMessage : undefined,
    replayJson: m.sendsInitialMessage ? input.replayJson : undefined,
    repository: input.repository,
    branch: input.branch,
    gitProvider: input.gitProvider,
    conversationInstructions: input.conversationInstructions,
    mcpConfig: input.mcpConfig,
  });
  if (created?.nestedConversationId) {
    conv.info.nestedConversationId = created.nestedConversationId;
    conv.info.url = `${conv.runtime!.url}/api/conversations/${created.nestedConversationId}`;
  }
  for (const w of created?.warnings ?? []) if (!conv.info.warnings.includes(w)) conv.warn(w);
}
