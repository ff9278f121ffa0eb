// refreshTokens against a local OAuth token endpoint standing in for GitHub, GitLab and Bitbucket.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { refreshProviderTokens, type OAuthConfig } from '../../src/conversation/activities/tokens';

describe('refreshTokens', () => {
  const requests: Array<{ path: string; form: URLSearchParams; auth?: string }> = [];
  let base: string;
  const server = createServer(async (req: IncomingMessage, res) => {
    let body = '';
    for await (const c of req) body += c;
    const form = new URLSearchParams(body);
    requests.push({ path: req.url!, form, auth: req.headers.authorization });
    res.setHeader('content-type', 'application/json');
    if (req.url === '/broken') return res.writeHead(500).end('{}');
    if (req.url === '/github-error') return res.end(JSON.stringify({ error: 'bad_refresh_token' }));
    res.end(JSON.stringify({ access_token: `new-${req.url!.slice(1)}`, refresh_token: 'rotated', expires_in: 28_800 }));
  });
  before(async () => {
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => server.close());

  const now = new Date('2026-11-21T12:00:00Z');
  const soon = '2026-11-21T14:00:00Z'; // 2 h left: inside the 4 h window
  const later = '2026-11-21T20:00:00Z'; // 8 h left

  test('refreshes tokens expiring within 4 h through each provider endpoint, and only those', async () => {
    requests.length = 0;
    const oauth: OAuthConfig = {
      github: { tokenUrl: `${base}/github`, clientId: 'gh-id', clientSecret: 'gh-secret' },
      gitlab: { tokenUrl: `${base}/gitlab`, clientId: 'gl-id' },
      bitbucket: { tokenUrl: `${base}/bitbucket`, clientId: 'bb-id', clientSecret: 'bb-secret' },
    };
    const r = await refreshProviderTokens(
      {
        github: { token: 'old-gh', refreshToken: 'r-gh', expiresAt: soon },
        gitlab: { token: 'old-gl', refreshToken: 'r-gl', expiresAt: later },
        bitbucket: { token: 'old-bb', refreshToken: 'r-bb', expiresAt: soon, host: 'bitbucket.org' },
      },
      oauth,
      now,
    );
    assert.deepEqual(r.refreshed, ['github', 'bitbucket']);
    assert.deepEqual(r.warnings, []);
    assert.equal(r.tokens.github?.token, 'new-github');
    assert.equal(r.tokens.github?.refreshToken, 'rotated');
    assert.equal(r.tokens.github?.expiresAt, '2026-11-21T20:00:00.000Z');
    assert.equal(r.tokens.gitlab?.token, 'old-gl', 'not yet due');
    assert.equal(r.tokens.bitbucket?.host, 'bitbucket.org', 'other fields kept');
    const gh = requests.find((q) => q.path === '/github')!;
    assert.equal(gh.form.get('grant_type'), 'refresh_token');
    assert.equal(gh.form.get('refresh_token'), 'r-gh');
    assert.equal(gh.form.get('client_id'), 'gh-id');
    const bb = requests.find((q) => q.path === '/bitbucket')!;
    assert.equal(bb.auth, `Basic ${Buffer.from('bb-id:bb-secret').toString('base64')}`);
    assert.equal(bb.form.get('client_id'), null, 'Bitbucket takes client credentials as Basic auth');
  });

  test('a token without a refresh token or expiry is left alone', async () => {
    requests.length = 0;
    const r = await refreshProviderTokens(
      { github: { token: 't', expiresAt: soon }, gitlab: { token: 'u', refreshToken: 'r' } },
      { github: { tokenUrl: `${base}/github` } },
      now,
    );
    assert.deepEqual(r.refreshed, []);
    assert.equal(requests.length, 0);
  });

  test('a failed refresh keeps the old token and records a warning without the token', async () => {
    const r = await refreshProviderTokens(
      {
        github: { token: 'old-gh', refreshToken: 'secret-refresh', expiresAt: soon },
        gitlab: { token: 'old-gl', refreshToken: 'r', expiresAt: soon },
        bitbucket: { token: 'old-bb', refreshToken: 'r', expiresAt: soon },
      },
      { github: { tokenUrl: `${base}/github-error` }, gitlab: { tokenUrl: `${base}/broken` } },
      now,
    );
    assert.deepEqual(r.refreshed, []);
    assert.equal(r.tokens.github?.token, 'old-gh');
    assert.equal(r.tokens.gitlab?.token, 'old-gl');
    assert.deepEqual(r.warnings, [
      'github: refresh failed (token endpoint gave no access_token (bad_refresh_token)); kept the old token',
      'gitlab: refresh failed (token endpoint answered 500); kept the old token',
      'bitbucket: token expires soon but no OAuth token endpoint is configured for it; kept the old token',
    ]);
    assert.doesNotMatch(r.warnings.join(), /secret-refresh|old-gh/);
  });
});
