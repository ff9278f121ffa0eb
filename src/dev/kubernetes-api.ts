// Requests to the local Kubernetes' API server as its administrator (system:masters, mutual TLS with the cluster's own
// CA): what the cluster's start waits on, and what its tests ask. nestor's own calls go through the official client.
import { readFileSync } from 'node:fs';
import { Agent, request } from 'undici';
import type { KubernetesPki } from './kubernetes-pki';

export interface ApiAnswer {
  /** The HTTP status; 0 when the server did not answer (then `body` says why). */
  status: number;
  /** The body, parsed when it is JSON (`/readyz` answers "ok"). */
  body: unknown;
}

export class AdminApi {
  private readonly agent: Agent;

  constructor(
    private readonly server: string,
    pki: KubernetesPki,
  ) {
    const admin = pki.client('admin');
    this.agent = new Agent({
      connect: { ca: readFileSync(pki.ca), cert: readFileSync(admin.cert), key: readFileSync(admin.key) },
    });
  }

  /** `contentType`: a PATCH's kind (`application/json-patch+json`, `application/merge-patch+json`). */
  async call(method: string, path: string, body?: unknown, contentType = 'application/json'): Promise<ApiAnswer> {
    try {
      const r = await request(`${this.server}${path}`, {
        method: method as 'GET',
        dispatcher: this.agent,
        headers: body === undefined ? {} : { 'content-type': contentType },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await r.body.text();
      try {
        return { status: r.statusCode, body: JSON.parse(text) };
      } catch {
        return { status: r.statusCode, body: text };
      }
    } catch (err) {
      return { status: 0, body: String(err) };
    }
  }

  close(): Promise<void> {
    return this.agent.close();
  }
}
