// Structured JSON logs: one object a line, conversation/user/step attached, secrets redacted.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { JsonLogger, REDACTED, redact } from '../../src/observability/log';

test('secret fields are redacted at any depth, in arrays and errors; other fields stay', () => {
  const out = redact({
    conversationId: 'c1',
    settings: { llmApiKey: 'sk-1', llm_api_key: 'sk-2', agent: 'CodeActAgent' },
    gitProviderTokens: { github: { token: 'ghp_x', host: 'github.com' } },
    customSecrets: { DB: { secret: 's' } },
    sessionApiKey: 'key',
    headers: { Authorization: 'Bearer abc' },
    list: [{ password: 'p' }],
    empty: '',
  }) as any;
  assert.equal(out.conversationId, 'c1');
  assert.equal(out.settings.llmApiKey, REDACTED);
  assert.equal(out.settings.llm_api_key, REDACTED);
  assert.equal(out.settings.agent, 'CodeActAgent');
  // A field named like a secret is hidden whole, whatever it holds.
  assert.equal(out.gitProviderTokens, REDACTED);
  assert.equal(out.customSecrets, REDACTED);
  assert.equal(out.sessionApiKey, REDACTED);
  assert.equal(out.headers.Authorization, REDACTED);
  assert.equal(out.list[0].password, REDACTED);
  assert.equal(out.empty, '');
});

test('secret-shaped text inside messages is redacted too', () => {
  assert.equal(redact('sent Authorization: Bearer abcdef123456 to x'), `sent Authorization: Bearer ${REDACTED} to x`);
  assert.equal(redact('url?api_key=sk-123&x=1'), `url?api_key=${REDACTED}&x=1`);
  assert.equal(redact('{"llmApiKey":"sk-123"}'), `{"llmApiKey":"${REDACTED}"}`);
  const err = redact(Object.assign(new Error('failed with token=ghp_abc'), { type: 'NestedUnavailable' })) as any;
  assert.deepEqual(err, { type: 'NestedUnavailable', message: `failed with token=${REDACTED}` });
});

test('JsonLogger writes one JSON object a line with level, message and attributes; names the conversation from its workflow ID', () => {
  const lines: string[] = [];
  const log = new JsonLogger({ level: 'INFO', write: (l) => lines.push(l) });
  log.debug('hidden');
  log.info('step started', {
    workflowId: 'conversation-abc',
    activityType: 'createRuntime',
    userId: 'u1',
    settings: { llmApiKey: 'sk-x' },
  });
  log.warn('plain', { workflowId: 'user-sessions-u1' });
  assert.equal(lines.length, 2);
  assert.equal(JSON.parse(lines[1]).conversationId, undefined, 'only conversation workflows name a conversation');
  assert.ok(lines.every((l) => l.endsWith('\n')));
  const rec = JSON.parse(lines[0]);
  assert.equal(rec.level, 'INFO');
  assert.equal(rec.msg, 'step started');
  assert.equal(rec.conversationId, 'abc');
  assert.equal(rec.userId, 'u1');
  assert.equal(rec.step, 'createRuntime');
  assert.equal(rec.settings.llmApiKey, REDACTED);
  assert.ok(!Number.isNaN(Date.parse(rec.time)));
  assert.ok(!lines.join('').includes('sk-x'));
});
