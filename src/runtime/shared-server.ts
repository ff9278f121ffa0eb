// SharedServerProvider: a runtime provider that creates nothing. Every conversation lives on one nested server that
// is already running (e.g. an in-process emulator), so the workflow machinery can be measured or exercised alone.
import type { RuntimeHandle, RuntimeProvider, RuntimeSpec, RuntimeSummary } from './provider';
import { UNLABELLED_MANIFEST, type ImageManifest } from './image-manifest';

export class SharedServerProvider implements RuntimeProvider {
  readonly kind = 'shared-server';
  private readonly known = new Map<string, RuntimeSummary>();

  constructor(private readonly server: { url: string; sessionApiKey: string }) {}

  async requirements(): Promise<ImageManifest> {
    return UNLABELLED_MANIFEST;
  }
  async create(spec: RuntimeSpec): Promise<RuntimeHandle> {
    const adopted = this.known.has(spec.conversationId);
    if (!adopted) {
      this.known.set(spec.conversationId, {
        runtimeId: `shared-${spec.conversationId}`,
        name: spec.conversationId,
        conversationId: spec.conversationId,
        userId: spec.userId,
        state: 'running',
        createdAt: new Date().toISOString(),
      });
    }
    return {
      runtimeId: `shared-${spec.conversationId}`,
      url: this.server.url,
      sessionApiKey: this.server.sessionApiKey,
      adopted,
    };
  }
  async pause(conversationId: string): Promise<void> {
    const r = this.known.get(conversationId);
    if (r) r.state = 'exited';
  }
  async resume(conversationId: string): Promise<RuntimeHandle> {
    const r = this.known.get(conversationId);
    if (r) r.state = 'running';
    return {
      runtimeId: `shared-${conversationId}`,
      url: this.server.url,
      sessionApiKey: this.server.sessionApiKey,
      adopted: true,
    };
  }
  async remove(conversationId: string): Promise<boolean> {
    return this.known.delete(conversationId);
  }
  async inspect(conversationId: string): Promise<RuntimeSummary | undefined> {
    return this.known.get(conversationId);
  }
  async list(): Promise<RuntimeSummary[]> {
    return [...this.known.values()];
  }
  async diagnose(): Promise<string> {
    return 'a shared server: no per-conversation logs';
  }
}
