// Loaded once per worker thread before any workflow (the worker's preloadModules, PRELOADED_WORKFLOW_MODULES in
// src/worker.ts) and shared by every workflow of that thread.
//
// Why: the SDK gives each workflow its own copy of every module it imports. The input schemas are some two hundred
// zod objects, each with dozens of closures, so every cached workflow held its own set and every new or replayed one
// built them again (some 3 MB each; bench/history.md, issue 24). Here they are built once, by the first workflow that
// validates anything, and kept in this module's closure for all the others. They hold no workflow's state: a schema
// is a pure function of its input. test/service/workflow-bundle.test.ts checks the bundle keeps it so.
//
// The SDK deep-freezes what preloaded modules export (so no workflow can change what another sees); zod writes to
// its schema objects while parsing (lazy caches, a pattern's lastIndex), so the schemas must not be reachable from
// an export: a closure variable is not (the SDK's deepFreeze says so: it cannot reach closures).
import type * as Schemas from './schemas';

let schemas: typeof Schemas | undefined;

/** The input schemas (src/shared/schemas.ts), one set per worker thread. */
export function workflowSchemas(): typeof Schemas {
  // Required on first use, inside a workflow: required here at preload, they would be exported and frozen.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return (schemas ??= require('./schemas') as typeof Schemas);
}
