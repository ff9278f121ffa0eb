// The fault suite's git provider: an OAuth token endpoint that rotates refresh tokens the way GitHub's and GitLab's
// expiring user tokens do. Each refresh token is good for one refresh; once its answer (a new access token and a new
// refresh token) has been handed to the caller, using it again is refused. A caller that does so lost the rotated
// pair, which is a violation of nestor's promise that a rotated token is never lost.
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class RotatingTokenEndpoint {
  /** Refresh tokens whose rotation was handed out: each is dead. */
  private readonly revoked = new Set<string>();
  /** Refresh tokens used again after their rotation was handed out. */
  readonly reused: string[] = [];
  refreshes = 0;

  private readonly server: Server;
  url = '';

  private constructor(private readonly delayMs: number) {
    this.server = createServer((req, res) => void this.answer(req, res));
  }

  /**
   * `delayMs` keeps each refresh in flight long enough for the suite to kill the worker in it. An answer the caller
   * never received (its process died meanwhile) rotates nothing: no client can keep what it never got.
   */
  static async start(delayMs = 300): Promise<RotatingTokenEndpoint> {
    const self = new RotatingTokenEndpoint(delayMs);
    self.server.listen(0, '127.0.0.1');
    await once(self.server, 'listening');
    self.url = `http://127.0.0.1:${(self.server.address() as AddressInfo).port}/token`;
    return self;
  }

  private async answer(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let body = '';
    for await (const chunk of req) body += String(chunk);
    const used = new URLSearchParams(body).get('refresh_token') ?? '';
    res.setHeader('content-type', 'application/json');
    if (this.revoked.has(used)) {
      this.reused.push(used);
      // GitHub's answer to a spent refresh token: 200 with an error.
      res.end(JSON.stringify({ error: 'bad_refresh_token' }));
      return;
    }
    await sleep(this.delayMs);
    if (res.destroyed || req.socket.destroyed) return;
    const next = `${used}+`;
    res.on('finish', () => {
      this.revoked.add(used);
      this.refreshes++;
    });
    res.end(JSON.stringify({ access_token: `ghp-${next}`, refresh_token: next, expires_in: 28_800 }));
  }

  /** The refresh tokens of this conversation (they carry its ID) that were used again after their rotation. */
  reusedBy(conversationId: string): string[] {
    return this.reused.filter((t) => t.includes(conversationId));
  }

  close(): void {
    this.server.close();
    this.server.closeAllConnections();
  }
}
