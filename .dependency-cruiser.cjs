// Module rules, checked by `npm run lint` (and so by the test command): the layers of docs/architecture.md hold.
// Workflow code is what the worker bundles into its deterministic sandbox.
const WORKFLOW_CODE = [
  '^src/workflows[.]ts$',
  '^src/conversation/workflow/',
  // A feature's workflow, and the parts it keeps beside it (workflow-<part>.ts).
  '^src/(user-sessions|resume-schedules|reaper|sandbox-pools|sandbox-hosts)/workflow[.]ts$',
  '^src/(user-sessions|resume-schedules|reaper|sandbox-pools|sandbox-hosts)/workflow-[a-z-]+[.]ts$',
  '^src/observability/workflow-interceptors[.]ts$',
];
const FEATURES = '^src/(conversation|user-sessions|resume-schedules|reaper|sandbox-pools|sandbox-hosts)/';
const ADAPTERS = '^src/(runtime|nested|codec|observability|llm-stand-in)/';
const ENTRY_POINTS = ['^src/(cli|worker|host-worker)[.]ts$', '^src/cli/', '^src/dev/'];

module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      comment: 'No cycle of modules at run time (a cycle through type-only imports is erased by the compiler).',
      severity: 'error',
      from: { path: '^src/' },
      to: { circular: true, viaOnly: { dependencyTypesNot: ['type-only'] } },
    },
    {
      name: 'workflow-imports-only-types-and-messages',
      comment:
        'Workflow code imports other workflow code, message definitions, the contract (constants, errors, defaults), ' +
        'the key-mismatch marker and the schemas through src/shared/workflow-preload.ts (one set per worker thread; ' +
        'imported directly, every workflow would build its own); anything else only as a type.',
      severity: 'error',
      from: { path: WORKFLOW_CODE },
      to: {
        path: '^src/',
        pathNot: [
          ...WORKFLOW_CODE,
          '^src/[^/]+/messages[.]ts$',
          '^src/shared/(constants|workflow-preload)[.]ts$',
          '^src/errors/index[.]ts$',
          '^src/defaults[.]ts$',
          '^src/codec/undecryptable[.]ts$',
        ],
        dependencyTypesNot: ['type-only'],
      },
    },
    {
      name: 'workflow-code-has-no-node-modules',
      severity: 'error',
      from: { path: WORKFLOW_CODE },
      to: { dependencyTypes: ['core'] },
    },
    {
      name: 'activities-never-import-workflow-code',
      severity: 'error',
      from: { path: ['^src/activities[.]ts$', '/activities(/|[.]ts$)'] },
      to: { path: WORKFLOW_CODE },
    },
    {
      name: 'features-meet-only-through-messages',
      comment: "A feature uses another's message definitions and client helpers, never its workflow or activities.",
      severity: 'error',
      from: { path: '^src/(conversation|user-sessions|resume-schedules|reaper|sandbox-pools|sandbox-hosts)/' },
      to: { path: FEATURES, pathNot: ['^src/$1/', '/(messages|schedules|client)[.]ts$'] },
    },
    {
      name: 'adapters-know-no-feature',
      comment: 'runtime/, nested/, codec/, observability/ serve the features and never reach back up into them.',
      severity: 'error',
      from: { path: ADAPTERS },
      to: { path: [FEATURES, ...ENTRY_POINTS, '^src/activities[.]ts$', '^src/workflows[.]ts$'] },
    },
    {
      name: 'the-contract-stands-alone',
      comment: 'schemas, constants, defaults and the error catalogue import nothing of nestor above them.',
      severity: 'error',
      from: { path: ['^src/shared/(constants|schemas)[.]ts$', '^src/defaults[.]ts$', '^src/errors/'] },
      to: {
        path: '^src/',
        pathNot: ['^src/shared/(constants|schemas)[.]ts$', '^src/defaults[.]ts$', '^src/errors/'],
      },
    },
    {
      name: 'adapters-read-the-config-as-a-type',
      comment: 'Configuration is loaded by the entry points and handed down; an adapter never loads it itself.',
      severity: 'error',
      from: { path: ADAPTERS },
      to: { path: '^src/config[.]ts$', dependencyTypesNot: ['type-only'] },
    },
    {
      name: 'nothing-imports-the-entry-points',
      severity: 'error',
      from: { path: '^src/', pathNot: ENTRY_POINTS },
      to: { path: ENTRY_POINTS },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    includeOnly: '^src/',
    tsConfig: { fileName: 'tsconfig.json' },
    tsPreCompilationDeps: true,
  },
};
