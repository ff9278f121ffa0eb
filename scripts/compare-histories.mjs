// Compare the commands of two sets of recorded histories (e.g. test/histories/before-issue-11 and test/histories):
// for each file in both, the workflow's own commands in order (activities scheduled, markers, timers, search
// attributes, continue-as-new...), leaving out what timing decides (workflow task boundaries, activity attempts,
// messages received). A restructuring that changes no behaviour prints "same" for every file.
//   node scripts/compare-histories.mjs test/histories/before-issue-11 test/histories
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

const TIMING = [
  'EVENT_TYPE_WORKFLOW_TASK',
  'EVENT_TYPE_ACTIVITY_TASK_STARTED',
  'EVENT_TYPE_ACTIVITY_TASK_COMPLETED',
  'EVENT_TYPE_ACTIVITY_TASK_FAILED',
  'EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT',
  'EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED',
  'EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE',
  'EVENT_TYPE_EXTERNAL_WORKFLOW_EXECUTION_SIGNALED',
];

function commands(file) {
  const out = [];
  for (const e of JSON.parse(readFileSync(file, 'utf8')).history.events) {
    if (TIMING.some((t) => e.eventType.startsWith(t))) continue;
    const attrs = Object.entries(e).find(([k]) => k.endsWith('EventAttributes'))?.[1] ?? {};
    out.push(
      `${e.eventType}${attrs.activityType ? `:${attrs.activityType.name}` : ''}${attrs.markerName ? `:${attrs.markerName}` : ''}`,
    );
  }
  return out;
}

const [before, after] = process.argv.slice(2);
if (!before || !after) {
  console.error('usage: node scripts/compare-histories.mjs <before-dir> <after-dir>');
  process.exit(2);
}
let differ = 0;
for (const f of readdirSync(after)
  .filter((f) => f.endsWith('.json'))
  .sort()) {
  if (!existsSync(join(before, f))) continue;
  const [a, b] = [commands(join(before, f)), commands(join(after, f))];
  const same = a.length === b.length && a.every((x, i) => x === b[i]);
  if (!same) differ++;
  const gone = a.filter((x) => !b.includes(x));
  const added = b.filter((x) => !a.includes(x));
  console.log(
    `${f}: ${b.length} commands, ${same ? 'same' : `differ (only before: ${gone.join(', ') || '-'}; only after: ${added.join(', ') || '-'})`}`,
  );
}
process.exitCode = differ ? 1 : 0;
