// What OpenHands' servers do with a cloned repository before the agent starts, for V1 (prepareRepository): the
// repository's `.openhands/pre-commit.sh` becomes its git pre-commit hook (a hook already there is kept as
// `pre-commit.local` and runs first), and its `.openhands/setup.sh` runs once in the working tree. A setup script that
// fails does not fail the start, as in OpenHands: the activity's result says how it ended (the Temporal UI shows it).
import type { AgentServerClient } from '../../nested/agent-server';

/** The most a setup script may take. @default 600 */
export const SETUP_TIMEOUT_S = 600;
/** Written once the setup script succeeded, so a retried prepareRepository does not run it again. */
const SETUP_DONE = '.git/nestor-setup-done';
const HOOK_MARK = 'nestor-openhands-hook';

export interface ConventionsReport {
  /** `installed`, or `none` without a `.openhands/pre-commit.sh`. */
  preCommitHook: 'installed' | 'none';
  /** `ran`, `already ran`, `none` without a `.openhands/setup.sh`, or `failed (exit N): <its last output>`. */
  setupScript: string;
}

export async function applyRepositoryConventions(c: AgentServerClient, dir: string): Promise<ConventionsReport> {
  const hook = await c.bash(
    `if [ ! -f .openhands/pre-commit.sh ]; then echo none; exit 0; fi; chmod +x .openhands/pre-commit.sh; ` +
      `h=.git/hooks/pre-commit; mkdir -p .git/hooks; ` +
      `if [ -f "$h" ] && ! grep -q ${HOOK_MARK} "$h"; then mv "$h" "$h.local"; fi; ` +
      `printf '%s\\n' '#!/bin/sh' '# ${HOOK_MARK}' ` +
      `'if [ -x .git/hooks/pre-commit.local ]; then .git/hooks/pre-commit.local "$@" || exit $?; fi' ` +
      `'exec .openhands/pre-commit.sh "$@"' > "$h" && chmod +x "$h" && echo installed`,
    { cwd: dir, timeoutS: 30 },
  );
  const setup = await c.bash(
    `if [ ! -f .openhands/setup.sh ]; then echo none; exit 0; fi; ` +
      `if [ -f ${SETUP_DONE} ]; then echo 'already ran'; exit 0; fi; ` +
      `bash .openhands/setup.sh; rc=$?; if [ $rc -eq 0 ]; then touch ${SETUP_DONE}; echo ran; fi; exit $rc`,
    { cwd: dir, timeoutS: SETUP_TIMEOUT_S },
  );
  const last = setup.output.trim().split('\n').at(-1) ?? '';
  return {
    preCommitHook: hook.exitCode === 0 && hook.output.trim().endsWith('installed') ? 'installed' : 'none',
    setupScript:
      setup.exitCode === 0
        ? (['none', 'already ran', 'ran'].find((s) => last === s) ?? 'ran')
        : `failed (exit ${setup.exitCode}): ${setup.output.trim().slice(-400)}`,
  };
}
