// prepareRepository (V1): the start's repository cloned into the conversation's workspace through the agent server's
// bash, and its branch checked out, each step idempotent. OpenHands' app server does the same before it creates the
// conversation, with the token in the clone URL; here the token never is in a URL, a command, a log or a failure: it
// reaches git through a credential file written by upload to the sandbox's in-memory /tmp and removed by the same
// command that clones.
import { randomUUID } from 'node:crypto';
import { heartbeat, cancellationSignal } from '../../shared/activity-context';
import { ErrorType, NestorError } from '../../errors';
import type { GitProvider, ProviderTokens } from '../../shared/schemas';
import { agentServer, type NestedDeps, type NestedTarget } from './nested-target';
import { applyRepositoryConventions, type ConventionsReport } from './repository-conventions';

/** The agent's workspace on the conversation's volume (the agent server image's OH_WORKSPACE_PATH). */
export const V1_WORKING_DIR = '/data/workspace';
/** The most a clone may take (OpenHands' app server allows 120 s). @default 600 */
export const CLONE_TIMEOUT_S = 600;

export interface PrepareRepositoryInput extends NestedTarget {
  /** `owner/repo` (the start input's `repository`). */
  repository: string;
  branch?: string;
  /** @default 'github' */
  gitProvider?: GitProvider;
  providerTokens?: ProviderTokens;
  gitUserName?: string;
  gitUserEmail?: string;
}

/** Where a provider serves repositories over HTTPS (`host` names a self-hosted one; a URL with its scheme is kept). */
const HOSTS: Partial<Record<GitProvider, string>> = {
  github: 'github.com',
  gitlab: 'gitlab.com',
  bitbucket: 'bitbucket.org',
};
/** The user name each provider expects beside a token over HTTPS. */
const TOKEN_USER: Partial<Record<GitProvider, string>> = {
  github: 'x-access-token',
  gitlab: 'oauth2',
  bitbucket: 'x-token-auth',
};

/** Where the repository's working tree is, for the conversation's workspace. */
export function repositoryDir(repository: string): string {
  return `${V1_WORKING_DIR}/${repository.split('/')[1]}`;
}

/** Single-quoted for the shell. */
const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/** The provider's base URL: https://<host>, or `host` itself when it carries a scheme (a local or plain-HTTP server). */
export function providerBase(provider: GitProvider, host?: string): string {
  const h = host ?? HOSTS[provider];
  if (!h)
    throw new NestorError(
      ErrorType.InvalidInput,
      `gitProviderTokens.${provider}.host: the ${provider} provider has no public host; name the host of yours`,
      false,
    );
  return /^https?:\/\//.test(h) ? h.replace(/\/+$/, '') : `https://${h}`;
}

/**
 * Clone (once), check out, and apply the repository's own `.openhands` conventions (repository-conventions.ts);
 * returns the working tree's path and how the conventions went.
 */
export async function prepareRepositoryV1(
  input: PrepareRepositoryInput,
  deps: NestedDeps,
): Promise<{ path: string } & ConventionsReport> {
  const c = agentServer(input, deps, cancellationSignal());
  const provider = input.gitProvider ?? 'github';
  const dir = repositoryDir(input.repository);
  const fail = (what: string, r: { exitCode: number; output: string }, token?: string) => {
    const said = (token ? r.output.split(token).join('<token>') : r.output).trim().slice(-600);
    // Missing, refused: trying again cannot help.
    const final = /not found|authentication failed|could not read username|403|401|did not match any|pathspec/i.test(
      said,
    );
    return new NestorError(
      ErrorType.RepositoryCloneFailed,
      `${what} of ${input.repository} failed (exit ${r.exitCode}): ${said}`,
      !final,
      { repository: input.repository },
    );
  };
  heartbeat({ step: 'look' });
  const there = await c.bash(`test -d ${q(`${dir}/.git`)} && echo present || echo absent`, { timeoutS: 30 });
  if (there.output.trim() !== 'present') {
    const token = input.providerTokens?.[provider]?.token;
    const base = providerBase(provider, input.providerTokens?.[provider]?.host);
    const cred = `/tmp/nestor-git-${randomUUID()}`;
    if (token) {
      const u = new URL(base);
      u.username = TOKEN_USER[provider] ?? 'git';
      u.password = token;
      await c.upload(cred, `${u.toString().replace(/\/$/, '')}\n`);
    }
    const partial = `${V1_WORKING_DIR}/.${input.repository.split('/')[1]}.partial`;
    // A half clone of a killed attempt is removed first; the tree appears under its name only once complete.
    const helper = token ? `-c credential.helper=${q(`store --file=${cred}`)} ` : '';
    const branch = input.branch ? `--branch ${q(input.branch)} ` : '';
    const cmd =
      `mkdir -p ${q(V1_WORKING_DIR)} && rm -rf ${q(partial)} && ` +
      `GIT_TERMINAL_PROMPT=0 git ${helper}clone ${branch}-- ${q(`${base}/${input.repository}.git`)} ${q(partial)} && ` +
      `mv ${q(partial)} ${q(dir)}; rc=$?; rm -f ${q(cred)}; exit $rc`;
    heartbeat({ step: 'clone' });
    const r = await c.bash(cmd, { timeoutS: CLONE_TIMEOUT_S });
    if (r.exitCode !== 0) throw fail('git clone', r, token);
  } else if (input.branch) {
    const r = await c.bash(`git checkout ${q(input.branch)}`, { cwd: dir, timeoutS: 60 });
    if (r.exitCode !== 0) throw fail(`git checkout ${input.branch}`, r);
  }
  for (const [key, value] of [
    ['user.name', input.gitUserName],
    ['user.email', input.gitUserEmail],
  ] as const) {
    if (value === undefined) continue;
    const r = await c.bash(`git config ${key} ${q(value)}`, { cwd: dir, timeoutS: 30 });
    if (r.exitCode !== 0) throw fail(`git config ${key}`, r);
  }
  heartbeat({ step: 'conventions' });
  return { path: dir, ...(await applyRepositoryConventions(c, dir)) };
}
