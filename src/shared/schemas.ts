// Input schemas: the source of the TypeScript types and of the published JSON Schema files in schemas/. Checked at
// the edge (client, CLI) for a quick answer, and again by the workflow itself, which trusts no client: a caller in any
// language gets the same defaults and the same errors. Workflow-safe: zod and pure functions only.
import { z } from 'zod';
import { ErrorType, NestorError } from '../errors';
import {
  CONVERSATION_STATUSES,
  LIFE_STEPS,
  MAX_MESSAGE_BYTES,
  MAX_START_INPUT_BYTES,
  OPTIONAL_START_STEPS,
  START_STEPS,
  utf8Length,
} from './constants';

/**
 * Conversation IDs as the nested server accepts them (contract §7.1: at most 100 characters, no NUL,
 * `..`, `/`, `\` or control characters), narrowed to what a Docker container name allows.
 */
export const ConversationIdSchema = z
  .string()
  .min(1)
  .max(100)
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, 'must start with a letter or digit and hold only letters, digits, _ . -')
  .refine((s) => !s.includes('..'), 'must not contain ".."');

export const UserIdSchema = z
  .string()
  .min(1)
  .max(200)
  // eslint-disable-next-line no-control-regex -- control characters are what this refuses
  .regex(/^[^\u0000-\u001f\u007f]+$/, 'must not contain control characters');

const EnvNameSchema = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be a valid environment variable name');

/** Sandbox resources and environment. Omitted limits take the operator's defaults. */
export const SandboxSettingsSchema = z.strictObject({
  cpus: z.number().min(0.1).max(64).optional(),
  memoryMb: z.number().int().min(64).max(262144).optional(),
  pidsLimit: z.number().int().min(16).max(65536).optional(),
  env: z.record(EnvNameSchema, z.string().max(4096)).optional(),
  /** Network policy: false puts the sandbox on an internal network with no egress. @default true */
  egress: z.boolean().optional(),
  /** False never takes a sandbox from the warm pool: always a cold create. @default true */
  fromPool: z.boolean().optional(),
});

/** The user's settings, as OpenHands' `Settings` (camelCase here, snake_case on the nested wire). */
export const UserSettingsSchema = z.strictObject({
  agent: z.string().min(1).max(100).default('CodeActAgent'),
  llmModel: z.string().min(1).max(200),
  llmApiKey: z.string().max(4096).optional(),
  llmBaseUrl: z.url().optional(),
  language: z.string().max(20).optional(),
  maxIterations: z.number().int().min(1).max(100000).optional(),
  confirmationMode: z.boolean().optional(),
  securityAnalyzer: z.string().max(100).optional(),
  enableDefaultCondenser: z.boolean().optional(),
  condenserMaxSize: z.number().int().min(20).optional(),
  maxBudgetPerTask: z.number().positive().optional(),
  searchApiKey: z.string().max(4096).optional(),
  gitUserName: z.string().max(200).optional(),
  gitUserEmail: z.string().max(200).optional(),
  sandbox: SandboxSettingsSchema.optional(),
});

export const GIT_PROVIDERS = ['github', 'gitlab', 'bitbucket', 'azure_devops', 'enterprise_sso'] as const;
export type GitProvider = (typeof GIT_PROVIDERS)[number];

export const ProviderTokenSchema = z.strictObject({
  token: z.string().min(1).max(8192),
  refreshToken: z.string().min(1).max(8192).optional(),
  /** When the access token expires (ISO 8601). Tokens expiring within 4 h are refreshed at start. */
  expiresAt: z.iso.datetime({ offset: true }).optional(),
  /** The identity provider's user ID, passed through to the nested server. */
  userId: z.string().max(200).optional(),
  host: z.string().max(255).optional(),
});

export const CustomSecretSchema = z.strictObject({
  name: EnvNameSchema.max(200),
  value: z.string().max(65536),
  description: z.string().max(1000).optional(),
});

/** Durations a caller may shrink (tests) or stretch (slow images). */
export const StartTimeoutsSchema = z.strictObject({
  /** How long the container may take to answer GET /alive. @default 120000 */
  aliveTimeoutMs: z
    .number()
    .int()
    .min(100)
    .max(30 * 60_000)
    .optional(),
  /** How long the nested conversation may take to become ready after creation. @default 120000 */
  readyTimeoutMs: z
    .number()
    .int()
    .min(100)
    .max(30 * 60_000)
    .optional(),
  /** Pause (stop the container, keep it) after this long without messages; OpenHands' runtime API uses 20 min. @default 1200000 */
  idleTimeoutMs: z
    .number()
    .int()
    .min(100)
    .max(30 * 24 * 3_600_000)
    .optional(),
  /**
   * With sandbox hosts: how long a task for the conversation's host may wait for that host's worker before the host
   * counts as lost (schedule-to-start timeout). @default 30000
   */
  hostPickupTimeoutMs: z
    .number()
    .int()
    .min(1000)
    .max(30 * 60_000)
    .optional(),
});

const jsonString = z
  .string()
  .max(1_000_000)
  .refine((s) => {
    try {
      JSON.parse(s);
      return true;
    } catch {
      return false;
    }
  }, 'must be valid JSON');

export const StartConversationInputSchema = z
  .strictObject({
    conversationId: ConversationIdSchema,
    userId: UserIdSchema,
    settings: UserSettingsSchema,
    gitProviderTokens: z.partialRecord(z.enum(GIT_PROVIDERS), ProviderTokenSchema).optional(),
    customSecrets: z.array(CustomSecretSchema).max(100).optional(),
    initialMessage: z.string().min(1).max(MAX_MESSAGE_BYTES).optional(),
    replayJson: jsonString.optional(),
    repository: z
      .string()
      .regex(/^[\w.-]+\/[\w.-]+$/, 'must be owner/repo')
      .optional(),
    branch: z.string().min(1).max(255).optional(),
    gitProvider: z.enum(GIT_PROVIDERS).optional(),
    conversationInstructions: z.string().max(MAX_MESSAGE_BYTES).optional(),
    mcpConfig: z.record(z.string(), z.unknown()).optional(),
    title: z.string().max(200).optional(),
    timeouts: StartTimeoutsSchema.optional(),
    /** Continue-as-new once the history holds this many events (besides the server's suggestion); tests shrink it. */
    continueAsNewAfterEvents: z.number().int().min(50).max(50_000).optional(),
  })
  .superRefine((v, ctx) => {
    const bytes = utf8Length(JSON.stringify(v));
    if (bytes > MAX_START_INPUT_BYTES) {
      ctx.addIssue({
        code: 'custom',
        path: [],
        message: `the whole input is ${bytes} bytes as JSON; at most ${MAX_START_INPUT_BYTES} (Temporal's payload limit is 2 MB)`,
      });
    }
    if (v.initialMessage !== undefined && v.replayJson !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['replayJson'], message: 'cannot be combined with initialMessage' });
    }
    const names = new Set<string>();
    for (const [i, s] of (v.customSecrets ?? []).entries()) {
      if (names.has(s.name))
        ctx.addIssue({
          code: 'custom',
          path: ['customSecrets', i, 'name'],
          message: `duplicate secret name '${s.name}'`,
        });
      names.add(s.name);
    }
  });

export const SendMessageInputSchema = z.strictObject({
  /** Deduplication key, used as the update ID. The client makes a UUID when none is given. */
  messageId: z
    .string()
    .min(1)
    .max(200)
    .regex(/^[\w.:-]+$/, 'must hold only letters, digits, _ . : -')
    .optional(),
  content: z
    .string()
    .min(1, 'must not be empty')
    .max(MAX_MESSAGE_BYTES)
    .refine((c) => c.trim() !== '', 'must not be blank')
    .refine((c) => utf8Length(c) <= MAX_MESSAGE_BYTES, `must be at most ${MAX_MESSAGE_BYTES} bytes as UTF-8`),
  imageUrls: z.array(z.url()).max(20).optional(),
});

export const CloseInputSchema = z.strictObject({
  reason: z.string().max(500).optional(),
});

/** Input of the pause update and signal. */
export const PauseInputSchema = CloseInputSchema;

/**
 * Input of the waitReady update: who waits. Required, so a caller in any language that attaches to a live
 * conversation under its ID (update-with-start) is checked against its owner instead of getting its session key.
 */
export const WaitReadyInputSchema = z.strictObject({ userId: UserIdSchema });

export type UserSettings = z.infer<typeof UserSettingsSchema>;
export type SandboxSettings = z.infer<typeof SandboxSettingsSchema>;
export type ProviderToken = z.infer<typeof ProviderTokenSchema>;
export type ProviderTokens = Partial<Record<GitProvider, ProviderToken>>;
export type CustomSecret = z.infer<typeof CustomSecretSchema>;
export type StartTimeouts = z.infer<typeof StartTimeoutsSchema>;
export type StartConversationInput = z.infer<typeof StartConversationInputSchema>;
/** What callers pass: defaults not yet applied. */
export type StartConversationRequest = z.input<typeof StartConversationInputSchema>;
export type SendMessageInput = z.infer<typeof SendMessageInputSchema>;
export type CloseInput = z.infer<typeof CloseInputSchema>;
export type PauseInput = z.infer<typeof PauseInputSchema>;
export type WaitReadyInput = z.infer<typeof WaitReadyInputSchema>;

/** What a caller sees of a conversation. `sessionApiKey` is only in the result of start/waitReady. */
export const AgentLoopInfoSchema = z.strictObject({
  conversationId: z.string(),
  userId: z.string(),
  status: z.enum(CONVERSATION_STATUSES),
  step: z.enum([...START_STEPS, ...OPTIONAL_START_STEPS, ...LIFE_STEPS]).optional(),
  runtimeId: z.string().optional(),
  /**
   * The protocol of the sandbox's server: `v1` the current OpenHands agent server, `v0` the nested server of
   * openhands-ai ≤ 1.6.0 or the emulator (absent: v0). A conversation keeps it for its whole life.
   */
  protocol: z.enum(['v0', 'v1']).optional(),
  /** V1: the agent server's ID of the conversation (a UUID derived from conversationId). */
  nestedConversationId: z.string().optional(),
  url: z.string().optional(),
  sessionApiKey: z.string().optional(),
  startedAt: z.string(),
  readyAt: z.string().optional(),
  closedAt: z.string().optional(),
  pausedAt: z.string().optional(),
  /** Why the conversation was paused: idle, an explicit pause, or "too many conversations". */
  pauseReason: z.string().optional(),
  /** Which run of the workflow this is (continue-as-new starts a new one). */
  runNumber: z.number().int().optional(),
  messagesDelivered: z.number().int(),
  /** How the start's time was spent: container to /alive, and start to RUNNING in all. */
  timings: z
    .strictObject({ runtimeReadyMs: z.number().optional(), startToRunningMs: z.number().optional() })
    .optional(),
  /** How the start got its sandbox: claimed from the warm pool, or created for it (cold). */
  startPath: z.enum(['pool', 'cold']).optional(),
  /** Why a cold start took no pooled sandbox (the request has extra env, no egress, the pool had none ready…). */
  coldReason: z.string().optional(),
  /** With sandbox hosts: the host that holds the sandbox (its worker polls `sandbox-host-<id>`). */
  sandboxHost: z.string().optional(),
  lastError: z.strictObject({ type: z.string(), step: z.string().optional(), message: z.string() }).optional(),
  warnings: z.array(z.string()),
});
export type AgentLoopInfo = z.infer<typeof AgentLoopInfoSchema>;

export const MessageAckSchema = z.strictObject({
  messageId: z.string(),
  /** V0: the nested server's event ID of the message. */
  eventId: z.number().int().optional(),
  /** V1: the agent server's event ID of the message (a UUID). */
  nestedEventId: z.string().optional(),
});
export type MessageAck = z.infer<typeof MessageAckSchema>;

/** The published schemas, by file name. */
export const PUBLISHED_SCHEMAS = {
  'start-conversation-input': StartConversationInputSchema,
  'send-message-input': SendMessageInputSchema,
  'close-input': CloseInputSchema,
  'pause-input': PauseInputSchema,
  'wait-ready-input': WaitReadyInputSchema,
  'agent-loop-info': AgentLoopInfoSchema,
  'message-ack': MessageAckSchema,
} as const;

/** Parse `value` or throw an InvalidInput NestorError that lists every bad field. Never partial. */
export function parseInput<S extends z.ZodType>(schema: S, value: unknown, what: string): z.infer<S> {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  throw new NestorError(ErrorType.InvalidInput, `invalid ${what}: ${formatIssues(r.error)}`, false, {
    issues: r.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message })),
  });
}

/** "settings.llmModel: expected string, received undefined; …" — field paths first, never values. */
export function formatIssues(err: z.ZodError): string {
  return err.issues.map((i) => `${i.path.length ? i.path.join('.') : '(root)'}: ${i.message}`).join('; ');
}
