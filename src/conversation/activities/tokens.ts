// refreshTokens: git-provider OAuth refresh (contract §3). Failure keeps the old token and warns, as OpenHands does.
import { request, type Dispatcher } from 'undici';
import type { GitProvider, ProviderToken, ProviderTokens } from '../../shared/schemas';

/** Refresh tokens with less than this left (OpenHands PR #11296: 4 h). */
export const REFRESH_WINDOW_MS = 4 * 60 * 60 * 1000;

export interface OAuthClientConfig {
  /** Token endpoint, e.g. https://github.com/login/oauth/access_token */
  tokenUrl: string;
  clientId?: string;
  clientSecret?: string;
}

export type OAuthConfig = Partial<Record<GitProvider, OAuthClientConfig>>;

export { DEFAULT_TOKEN_URLS } from '../../defaults';

export interface RefreshResult {
  tokens: ProviderTokens;
  refreshed: GitProvider[];
  warnings: string[];
}

export function needsRefresh(t: ProviderToken, now: Date): boolean {
  if (!t.refreshToken || !t.expiresAt) return false;
  return Date.parse(t.expiresAt) - now.getTime() < REFRESH_WINDOW_MS;
}

/** One provider's refresh_token grant. GitHub and GitLab take client credentials in the form, Bitbucket as Basic auth. */
async function refreshOne(
  provider: GitProvider,
  token: ProviderToken,
  cfg: OAuthClientConfig,
  now: Date,
  dispatcher?: Dispatcher,
): Promise<ProviderToken> {
  const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: token.refreshToken! });
  const headers: Record<string, string> = {
    accept: 'application/json',
    'content-type': 'application/x-www-form-urlencoded',
  };
  if (provider === 'bitbucket') {
    headers.authorization = `Basic ${Buffer.from(`${cfg.clientId ?? ''}:${cfg.clientSecret ?? ''}`).toString('base64')}`;
  } else {
    if (cfg.clientId) form.set('client_id', cfg.clientId);
    if (cfg.clientSecret) form.set('client_secret', cfg.clientSecret);
  }
  const res = await request(cfg.tokenUrl, {
    method: 'POST',
    headers,
    body: form.toString(),
    dispatcher,
    headersTimeout: 10_000,
    bodyTimeout: 10_000,
  });
  const text = await res.body.text();
  if (res.statusCode !== 200) throw new Error(`token endpoint answered ${res.statusCode}`);
  let body: { access_token?: string; refresh_token?: string; expires_in?: number; error?: string };
  try {
    body = JSON.parse(text);
  } catch {
    throw new Error('token endpoint answered with a body that is not JSON');
  }
  // GitHub answers 200 with {"error": "..."} on a bad refresh token.
  if (!body.access_token) throw new Error(`token endpoint gave no access_token${body.error ? ` (${body.error})` : ''}`);
  return {
    ...token,
    token: body.access_token,
    refreshToken: body.refresh_token ?? token.refreshToken,
    expiresAt: body.expires_in ? new Date(now.getTime() + body.expires_in * 1000).toISOString() : undefined,
  };
}

/** Refresh every token that expires within REFRESH_WINDOW_MS and has a refresh token. Never throws for a provider's failure. */
export async function refreshProviderTokens(
  tokens: ProviderTokens,
  oauth: OAuthConfig,
  now: Date,
  dispatcher?: Dispatcher,
): Promise<RefreshResult> {
  const out: ProviderTokens = { ...tokens };
  const refreshed: GitProvider[] = [];
  const warnings: string[] = [];
  for (const [provider, token] of Object.entries(tokens) as [GitProvider, ProviderToken][]) {
    if (!token || !needsRefresh(token, now)) continue;
    const cfg = oauth[provider];
    if (!cfg) {
      warnings.push(
        `${provider}: token expires soon but no OAuth token endpoint is configured for it; kept the old token`,
      );
      continue;
    }
    try {
      out[provider] = await refreshOne(provider, token, cfg, now, dispatcher);
      refreshed.push(provider);
    } catch (err) {
      warnings.push(`${provider}: refresh failed (${(err as Error).message}); kept the old token`);
    }
  }
  return { tokens: out, refreshed, warnings };
}

/** refreshTokens: git provider tokens that expire within REFRESH_WINDOW_MS, refreshed through their OAuth endpoints. */
export function createTokenActivities(deps: { oauth?: OAuthConfig; dispatcher?: Dispatcher; now?: () => Date }) {
  return {
    async refreshTokens(input: { tokens: ProviderTokens }): Promise<RefreshResult> {
      return refreshProviderTokens(input.tokens, deps.oauth ?? {}, (deps.now ?? (() => new Date()))(), deps.dispatcher);
    },
  };
}
