// Replay the recorded histories (scripts/record-histories.ts) against today's workflow code: a change that breaks
// determinism fails here, before it reaches a worker with conversations in flight. No server or Docker needed.
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import type { HistoryAndWorkflowId } from '@temporalio/client';
import { historyFromJSON } from '@temporalio/common/lib/proto-utils';
import { Worker, bundleWorkflowCode } from '@temporalio/worker';
import { DeterminismViolationError } from '@temporalio/workflow';
import { FAILURE_CONVERTER_PATH } from '../../src/codec/keys';
import { PROJECT_ROOT } from '../../src/config';
import { BUNDLE_OPTIONS } from '../../src/worker';
import { workflowBundle } from '../helpers/temporal';

const DIR = join(PROJECT_ROOT, 'test/histories');
// The current recordings, and older ones kept in subfolders (e.g. before-async-touch/) for the patches they exercise.
const files = (readdirSync(DIR, { recursive: true }) as string[]).filter((f) => f.endsWith('.json')).sort();
const load = (f: string): HistoryAndWorkflowId => {
  const { workflowId, history } = JSON.parse(readFileSync(join(DIR, f), 'utf8'));
  return { workflowId, history: historyFromJSON(history) };
};
const quiet = { info() {}, warn() {}, error() {}, debug() {}, trace() {}, log() {} } as never;

describe('replay of recorded histories', () => {
  test('the recordings cover a start, a failed start, messages, pause and resume, continue-as-new, a close, the helpers and every patched path', () => {
    assert.ok(
      files.some((f) => f.startsWith('before-async-touch/')),
      'histories from before the async-touch patch are kept',
    );
    assert.ok(
      files.some((f) => f.startsWith('before-issue-10/')),
      'histories from before the delivery, slot and idle patches are kept',
    );
    assert.ok(
      files.some((f) => f.startsWith('before-issue-11/')),
      'histories from before the slot checks ran as local activities are kept',
    );
    assert.ok(
      files.some((f) => f.startsWith('before-issue-12/')),
      'histories from before the nested set-up ran as local activities (lean-start) are kept',
    );
    assert.ok(
      files.some((f) => f.startsWith('before-issue-13/')),
      'histories from before starts asked for a placement (sandbox-hosts) are kept',
    );
    assert.ok(
      files.some((f) => f.startsWith('before-issue-22/')),
      'histories from before the refresh was an activity again (refresh-as-activity) and hosts heartbeat are kept',
    );
    // Each patched path has a recording that takes it: recover-sandbox (recover-unreachable-sandbox, delivery-cursor),
    // idle-agent-busy (idle-counts-agent), user-sessions-at-limit (self-healing-slots), start-close (close-deletes-schedules),
    // host-lost (host-lost-pauses).
    for (const name of [
      'start-close',
      'failed-start',
      'messages',
      'pause-resume',
      'continue-as-new',
      'continue-as-new-run2',
      'resume-workflow',
      'reaper',
      'user-sessions',
      'recover-sandbox',
      'idle-agent-busy',
      'user-sessions-at-limit',
      'pooled-start',
      'sandbox-pool',
      'hosted-start',
      'host-lost',
      'sandbox-hosts',
      'v1-life',
    ]) {
      assert.ok(files.includes(`${name}.json`), `${name}.json is recorded`);
    }
  });

  test('each patched path is taken by a recording: its patch marker and the activity it schedules', () => {
    const events = (f: string) =>
      JSON.parse(readFileSync(join(DIR, f), 'utf8')).history.events as Array<Record<string, any>>;
    const patches = (f: string) =>
      events(f)
        .filter((e) => e.markerRecordedEventAttributes?.markerName === 'core_patch')
        .map(
          (e) =>
            JSON.parse(
              Buffer.from(e.markerRecordedEventAttributes.details['patch-data'].payloads[0].data, 'base64').toString(),
            ).id as string,
        );
    const scheduled = (f: string) =>
      events(f)
        .filter((e) => e.activityTaskScheduledEventAttributes)
        .map((e) => e.activityTaskScheduledEventAttributes.activityType.name as string);
    // A local activity leaves a marker whose data names its type.
    const ranLocally = (f: string) =>
      events(f)
        .filter((e) => e.markerRecordedEventAttributes?.markerName === 'core_local_activity')
        .map(
          (e) =>
            JSON.parse(Buffer.from(e.markerRecordedEventAttributes.details.data.payloads[0].data, 'base64').toString())
              .activity_type as string,
        );
    const cases: Array<[file: string, patch: string, activity: string]> = [
      ['recover-sandbox.json', 'recover-unreachable-sandbox', 'resumeRuntime'],
      ['recover-sandbox.json', 'delivery-cursor', 'sendEvent'],
      ['idle-agent-busy.json', 'idle-counts-agent', 'conversationActivity'],
      ['before-issue-11/user-sessions-at-limit.json', 'self-healing-slots', 'checkSlots'],
      ['start-close.json', 'close-deletes-schedules', 'deleteResumeSchedules'],
      // Its host lost while running: the message not picked up, the slot given back as it pauses.
      ['host-lost.json', 'host-lost-pauses', 'releaseSession'],
    ];
    for (const [file, patch, activity] of cases) {
      assert.ok(patches(file).includes(patch), `${file} records the ${patch} patch`);
      assert.ok(scheduled(file).includes(activity), `${file} schedules ${activity}`);
    }
    // A start on the worker's engine (claim-beside-slot): a pooled claim beside the slot, no placement asked for, and
    // readiness looked at once locally (a pooled start schedules no createRuntime or waitForReady).
    for (const file of ['pooled-start.json', 'start-close.json'])
      assert.ok(patches(file).includes('claim-beside-slot'), `${file} records the claim-beside-slot patch`);
    for (const a of ['whereSandbox', 'waitForReady'])
      assert.ok(ranLocally('pooled-start.json').includes(a), `pooled-start ran ${a} as a local activity`);
    assert.ok(scheduled('pooled-start.json').includes('claimRuntime'), 'pooled-start claims beside its slot');
    for (const a of ['createRuntime', 'waitForReady'])
      assert.ok(!scheduled('pooled-start.json').includes(a), `pooled-start schedules no ${a} activity`);
    assert.ok(scheduled('start-close.json').includes('createRuntime'), 'a cold start creates its sandbox');
    // The slot checks as local activities (local-slot-checks), at the limit and when a registry starts afresh.
    for (const file of ['user-sessions-at-limit.json', 'user-sessions.json']) {
      assert.ok(patches(file).includes('local-slot-checks'), `${file} records the local-slot-checks patch`);
      assert.ok(!scheduled(file).includes('checkSlots'), `${file} schedules no checkSlots activity`);
    }
    assert.ok(patches('user-sessions-at-limit.json').includes('self-healing-slots'));
    assert.ok(ranLocally('user-sessions-at-limit.json').includes('checkSlots'), 'checkSlots ran as a local activity');
    assert.ok(
      ranLocally('user-sessions.json').includes('listLiveConversations'),
      'a registry started afresh lists the live conversations locally',
    );
    // lean-start: the nested set-up steps run as local activities, none is scheduled as an activity task; the token
    // refresh is an activity again (refresh-as-activity: its answer is in history before anything else can fail).
    for (const file of ['start-close.json', 'pooled-start.json', 'pause-resume.json']) {
      assert.ok(patches(file).includes('lean-start'), `${file} records the lean-start patch`);
      for (const step of ['configureNestedServer', 'createConversation']) {
        assert.ok(ranLocally(file).includes(step), `${file}: ${step} ran as a local activity`);
        assert.ok(!scheduled(file).includes(step), `${file}: ${step} was not scheduled as an activity task`);
      }
      assert.ok(patches(file).includes('refresh-as-activity'), `${file} records the refresh-as-activity patch`);
      assert.ok(scheduled(file).includes('refreshTokens'), `${file}: refreshTokens scheduled as an activity`);
      assert.ok(!ranLocally(file).includes('refreshTokens'), `${file}: refreshTokens not local`);
    }
    assert.ok(ranLocally('before-issue-22/start-close.json').includes('refreshTokens'), 'before: a local refresh');
    // A hosted resume confirms its host before its slot; the registry heals its placements.
    assert.ok(patches('hosted-start.json').includes('host-before-slot'), 'hosted-start records host-before-slot');
    assert.ok(patches('sandbox-hosts.json').includes('heal-placements'), 'sandbox-hosts records heal-placements');
    assert.ok(scheduled('before-issue-12/start-close.json').includes('configureNestedServer'));
    // sandbox-hosts: every start asks for a placement (locally; on the worker's own engine not since claim-beside-slot);
    // on a host, the sandbox's steps go to its task queue (the nested set-up too: not local there) and a resume
    // confirms the host.
    assert.ok(!ranLocally('start-close.json').includes('placeSandbox'), 'on its own engine, no placement asked');
    for (const file of ['before-issue-24/start-close.json', 'hosted-start.json']) {
      assert.ok(patches(file).includes('sandbox-hosts'), `${file} records the sandbox-hosts patch`);
      assert.ok(ranLocally(file).includes('placeSandbox'), `${file}: placeSandbox ran as a local activity`);
    }
    const onQueue = (f: string, queue: string) =>
      events(f)
        .filter((e) => e.activityTaskScheduledEventAttributes?.taskQueue?.name === queue)
        .map((e) => e.activityTaskScheduledEventAttributes.activityType.name as string);
    const hostSteps = onQueue('hosted-start.json', 'sandbox-host-rec-host');
    for (const step of ['createRuntime', 'configureNestedServer', 'createConversation', 'waitForReady', 'sendEvent'])
      assert.ok(hostSteps.includes(step), `hosted-start: ${step} on the host's task queue`);
    for (const step of ['pauseRuntime', 'resumeRuntime', 'removeRuntime'])
      assert.ok(hostSteps.includes(step), `hosted-start: ${step} on the host's task queue`);
    assert.ok(
      ranLocally('hosted-start.json').filter((a) => a === 'placeSandbox').length >= 2,
      'placed at the start, confirmed at the resume',
    );
    assert.ok(scheduled('hosted-start.json').includes('releaseSandbox'), 'the close gives the placement back');
    // A warm pool's life: members booted and retired by its owner.
    assert.ok(scheduled('sandbox-pool.json').includes('createPoolMember'));
    assert.ok(scheduled('sandbox-pool.json').includes('retirePoolMember'));
    assert.ok(
      scheduled('idle-agent-busy.json').filter((a) => a === 'conversationActivity').length >= 2,
      'the idle check found the agent at work at least once',
    );
  });

  test('every recorded history replays against the current workflow code', async () => {
    const results = Worker.runReplayHistories(
      { workflowBundle: await workflowBundle(), dataConverter: { failureConverterPath: FAILURE_CONVERTER_PATH } },
      files.map(load),
    );
    let n = 0;
    for await (const r of results) {
      n++;
      assert.equal(r.error, undefined, `${r.workflowId} (${r.runId}): ${r.error?.message}`);
    }
    assert.equal(n, files.length);
  });

  test('a non-deterministic change is caught (control)', async () => {
    const changed = await bundleWorkflowCode({
      ...BUNDLE_OPTIONS,
      workflowsPath: require.resolve('../fixtures/changed-workflows'),
      logger: quiet,
    });
    const { workflowId, history } = load('start-close.json');
    await assert.rejects(
      Worker.runReplayHistory(
        { workflowBundle: changed, dataConverter: { failureConverterPath: FAILURE_CONVERTER_PATH } },
        history,
        workflowId,
      ),
      DeterminismViolationError,
    );
  });
});
