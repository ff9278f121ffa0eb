// A git server over smart HTTP for sandboxes to clone from: git's own `git http-backend` behind a small HTTP server
// that asks for a token as Basic auth, serving one repository (`acme/app`: a commit on `main`, one more on `feature`
// that adds a file and OpenHands' `.openhands/setup.sh` and `.openhands/pre-commit.sh`).
// It binds the sandbox network's gateway, the one address of this machine a sandbox reaches.
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface GitServer {
  /** e.g. http://172.18.0.1:40123: what a token's `host` takes. */
  base: string;
  /** `<method> <path> <user or ->` of every request, for what the test checks was asked. */
  requests: string[];
  close(): Promise<void>;
}

const BACKEND = '/usr/lib/git-core/git-http-backend';

export async function startGitServer(host: string, token: string): Promise<GitServer> {
  const root = mkdtempSync(join(tmpdir(), 'nestor-git-'));
  const work = join(root, 'work');
  const git = (cwd: string, ...args: string[]) =>
    execFileSync('git', ['-c', 'user.name=Test', '-c', 'user.email=test@example.com', ...args], { cwd });
  execFileSync('git', ['init', '-q', '--bare', '-b', 'main', join(root, 'acme/app.git')]);
  execFileSync('git', ['init', '-q', '-b', 'main', work]);
  writeFileSync(join(work, 'README.md'), 'the main branch\n');
  git(work, 'add', '.');
  git(work, 'commit', '-q', '-m', 'main');
  git(work, 'checkout', '-q', '-b', 'feature');
  writeFileSync(join(work, 'FEATURE.txt'), 'on the feature branch\n');
  // OpenHands' repository conventions: a setup script (it leaves a line each time it runs) and a pre-commit hook.
  mkdirSync(join(work, '.openhands'));
  writeFileSync(join(work, '.openhands/setup.sh'), 'echo "setup ran" >> .setup-ran\n');
  writeFileSync(join(work, '.openhands/pre-commit.sh'), '#!/bin/sh\necho "pre-commit hook ran"\n');
  git(work, 'add', '.');
  git(work, 'commit', '-q', '-m', 'feature');
  git(work, 'push', '-q', join(root, 'acme/app.git'), 'main', 'feature');

  const requests: string[] = [];
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://git');
    const [user, pass] = Buffer.from(String(req.headers.authorization ?? '').replace(/^Basic /, ''), 'base64')
      .toString('utf8')
      .split(':');
    requests.push(`${req.method} ${url.pathname} ${pass === token ? user : '-'}`);
    if (pass !== token) {
      res.writeHead(401, { 'www-authenticate': 'Basic realm="git"' }).end('token required\n');
      return;
    }
    const cgi = spawn(BACKEND, [], {
      env: {
        GIT_PROJECT_ROOT: root,
        GIT_HTTP_EXPORT_ALL: '1',
        PATH_INFO: url.pathname,
        QUERY_STRING: url.search.slice(1),
        REQUEST_METHOD: req.method ?? 'GET',
        CONTENT_TYPE: String(req.headers['content-type'] ?? ''),
        REMOTE_USER: user,
        REMOTE_ADDR: req.socket.remoteAddress ?? '',
      },
    });
    req.pipe(cgi.stdin);
    const out: Buffer[] = [];
    cgi.stdout.on('data', (d: Buffer) => out.push(d));
    cgi.on('close', () => {
      // A CGI answer: header lines, a blank line, the body; `Status:` sets the code.
      const all = Buffer.concat(out);
      const end = all.indexOf('\r\n\r\n') >= 0 ? all.indexOf('\r\n\r\n') + 4 : all.indexOf('\n\n') + 2;
      const headers: Record<string, string> = {};
      let status = 200;
      for (const line of all.subarray(0, end).toString('utf8').split(/\r?\n/).filter(Boolean)) {
        const [k, ...v] = line.split(':');
        if (k.toLowerCase() === 'status') status = parseInt(v.join(':'), 10);
        else headers[k] = v.join(':').trim();
      }
      res.writeHead(status, headers).end(all.subarray(end));
    });
  });
  server.listen(0, host);
  await once(server, 'listening');
  return {
    base: `http://${host}:${(server.address() as AddressInfo).port}`,
    requests,
    async close() {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
      rmSync(root, { recursive: true, force: true });
    },
  };
}
