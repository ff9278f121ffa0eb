// The line the worker, `nestor dev` and `nestor cluster` print about what sandboxes run and where.
import type { NestorConfig } from './config';

/** One line saying which runtime the sandboxes run, and how to choose the other (printed by `nestor dev` and the worker). */
export function describeRuntime(c: NestorConfig): string {
  return `${describeImage(c)}. ${describeEngine(c)}`;
}

function describeImage(c: NestorConfig): string {
  const others =
    "NESTOR_RUNTIME=openhands-v0 runs the V0 server of openhands-ai 1.4.0, NESTOR_RUNTIME=emulator nestor's quick echo emulator";
  if (c.runtime === 'openhands')
    return `Sandboxes run the current OpenHands agent server (NESTOR_RUNTIME=openhands, image ${c.runtimeImage}); ${others}`;
  if (c.runtime === 'openhands-v0')
    return `New sandboxes run the V0 OpenHands server, removed from OpenHands in 1.7.0 (NESTOR_RUNTIME=openhands-v0, image ${c.runtimeImage}); NESTOR_RUNTIME=openhands runs the current agent server`;
  return `Sandboxes run nestor's emulator of the OpenHands server, an echo agent (NESTOR_RUNTIME=emulator, image ${c.runtimeImage}); NESTOR_RUNTIME=openhands runs the real server`;
}

function describeEngine(c: NestorConfig): string {
  return c.engine.kind === 'kubernetes'
    ? `Sandboxes are pods in namespace ${c.engine.namespace} (NESTOR_SANDBOX_ENGINE=kubernetes)`
    : "Sandboxes are containers on this machine's Docker engine (NESTOR_SANDBOX_ENGINE=kubernetes puts them in pods)";
}
