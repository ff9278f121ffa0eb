// The LLM stand-in: OpenAI-compatible answers, scripted replies (plain, finish tool call, error), over real HTTP.
// needs: docker
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { once } from 'node:events';
import { request } from 'undici';
import { containerName } from '../../src/runtime/container-spec';
import { DockerRuntimeProvider, demux } from '../../src/runtime/docker';
import { RUNTIME_IMAGES } from '../../src/runtime/image-manifest';
import { docker, removeContainers } from '../helpers/docker';
import { uniqueId } from '../helpers/temporal';
import {
  FINISH_MARKER,
  REPLY_PREFIX,
  scriptedReply,
  startLlmStandIn,
  type LlmStandIn,
} from '../../src/llm-stand-in/server';

type Completion = {
  choices: Array<{
    message: { content: string | null; tool_calls?: Array<{ function: { name: string; arguments: string } }> };
    finish_reason: string;
  }>;
};

describe('LLM stand-in', () => {
  let llm: LlmStandIn;
  before(async () => {
    llm = await startLlmStandIn({ host: '127.0.0.1' });
  });
  after(() => llm.close());

  const chat = async (body: unknown) => {
    const res = await request(`${llm.baseUrl}/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    return {
      status: res.statusCode,
      body: (await res.body.json()) as Completion & { error?: { message: string; code?: string } },
    };
  };

  test('answers the last thing the user said, as an OpenAI chat completion', async () => {
    const r = await chat({
      model: 'stand-in',
      messages: [
        { role: 'system', content: 'be nice' },
        { role: 'user', content: 'hello' },
      ],
    });
    assert.equal(r.status, 200);
    assert.equal(r.body.choices[0].message.content, `${REPLY_PREFIX}hello`);
    assert.equal(r.body.choices[0].finish_reason, 'stop');
    assert.equal(llm.requests.at(-1)!.lastUserText, 'hello');
  });

  test("finds the user's words inside OpenHands' wrapping: context blocks, the emulated-function-calling example and reminder", () => {
    const wrapped =
      'Here is an example...\n--------------------- END OF EXAMPLE ---------------------\n\n--------------------- NEW TASK DESCRIPTION ---------------------\n' +
      'hello OpenHands\n--------------------- END OF NEW TASK DESCRIPTION ---------------------\n\nPLEASE follow the format strictly! PLEASE EMIT ONE AND ONLY ONE FUNCTION CALL PER MESSAGE.\n';
    const r = scriptedReply({
      model: 'openai/stand-in',
      messages: [
        {
          role: 'user',
          content: [
            { type: 'text', text: wrapped },
            { type: 'text', text: '<RUNTIME_INFORMATION>\nhosts\n</RUNTIME_INFORMATION>' },
          ],
        },
        { role: 'user', content: '<EXTRA_INFO>more context</EXTRA_INFO>' },
      ],
    });
    assert.equal((r.body as Completion).choices[0].message.content, `${REPLY_PREFIX}hello OpenHands`);
  });

  test(`${FINISH_MARKER} calls the finish tool: natively when tools are offered, else in OpenHands' emulated markup`, async () => {
    const native = await chat({
      model: 'stand-in',
      messages: [{ role: 'user', content: `done ${FINISH_MARKER}` }],
      tools: [{ type: 'function', function: { name: 'finish' } }],
    });
    assert.equal(native.body.choices[0].finish_reason, 'tool_calls');
    assert.equal(native.body.choices[0].message.tool_calls![0].function.name, 'finish');
    assert.deepEqual(JSON.parse(native.body.choices[0].message.tool_calls![0].function.arguments), {
      message: 'stand-in: task finished',
    });
    const emulated = await chat({ model: 'stand-in', messages: [{ role: 'user', content: `done ${FINISH_MARKER}` }] });
    assert.match(
      emulated.body.choices[0].message.content!,
      /^<function=finish>\n<parameter=message>stand-in: task finished<\/parameter>\n<\/function>$/,
    );
  });

  test('a model named *error* gets a 401 with an OpenAI error body, every time', async () => {
    for (let i = 0; i < 2; i++) {
      const r = await chat({ model: 'openai/stand-in-error', messages: [{ role: 'user', content: 'x' }] });
      assert.equal(r.status, 401);
      assert.equal(r.body.error?.code, 'invalid_api_key');
    }
  });

  test('bad requests are 400 naming what was expected; unknown routes 404; streaming works', async () => {
    assert.equal((await chat({ messages: [] })).status, 400);
    const notJson = await request(`${llm.baseUrl}/chat/completions`, { method: 'POST', body: '{' });
    assert.equal(notJson.statusCode, 400);
    await notJson.body.dump();
    const nope = await request(`${llm.baseUrl}/nope`);
    assert.equal(nope.statusCode, 404);
    assert.match(
      ((await nope.body.json()) as { error: { message: string } }).error.message,
      /POST \/v1\/chat\/completions/,
    );
    const stream = await request(`${llm.baseUrl}/chat/completions`, {
      method: 'POST',
      body: JSON.stringify({ model: 'm', stream: true, messages: [{ role: 'user', content: 'hi' }] }),
    });
    const text = await stream.body.text();
    assert.match(text, /"delta":\{"role":"assistant","content":"stand-in reply to: hi"\}/);
    assert.match(text, /data: \[DONE\]\n\n$/);
    const models = await request(`${llm.baseUrl}/models`);
    assert.deepEqual(
      ((await models.body.json()) as { data: Array<{ id: string }> }).data.map((m) => m.id),
      ['stand-in'],
    );
  });
});

describe('LLM stand-in, reached from sandboxes', () => {
  const provider = new DockerRuntimeProvider({ image: RUNTIME_IMAGES.emulator, owner: 'llm-stand-in-test' });
  const made: string[] = [];
  let llm: LlmStandIn;
  before(async () => {
    llm = await startLlmStandIn({ host: await provider.sandboxGateway() });
  });
  after(async () => {
    await llm.close();
    await removeContainers(made);
  });

  for (const egress of [true, false]) {
    test(`a sandbox on ${egress ? 'nestor-sandboxes' : 'nestor-sandboxes-internal (no egress)'} reaches it at the sandbox network's gateway`, async () => {
      const id = uniqueId(`stand-in-${egress ? 'egress' : 'internal'}`);
      made.push(id);
      await provider.create({ conversationId: id, userId: 'u', egress });
      const exec = await docker.getContainer(containerName(id)).exec({
        Cmd: [
          'node',
          '-e',
          `fetch(${JSON.stringify(`${llm.baseUrl}/models`)}).then((r) => r.json()).then((b) => console.log(b.data[0].id), (e) => console.log('ERR', e.cause?.code ?? e.message))`,
        ],
        AttachStdout: true,
        AttachStderr: true,
      });
      const stream = await exec.start({});
      const chunks: Buffer[] = [];
      stream.on('data', (d: Buffer) => chunks.push(d));
      await once(stream, 'end');
      assert.match(demux(Buffer.concat(chunks)), /^stand-in$/m);
    });
  }
});
