// The commands for resume schedules: schedule, schedules, unschedule.
import type { Command } from 'commander';
import { withClient } from './connect';
import { print } from './output';

export function addScheduleCommands(program: Command): void {
  program
    .command('schedule <conversationId>')
    .description('schedule a resume, with an optional message')
    .option('--at <iso-time>', 'once, at this time')
    .option('--cron <expression>', 'on a cron expression')
    .option('--every <interval>', "every interval, e.g. '1h'")
    .option('-m, --message <text>')
    .action(async (id: string, o, cmd) => {
      const scheduleId = await withClient((client) =>
        client.scheduleResume(id, { at: o.at, cron: o.cron, every: o.every, message: o.message }),
      );
      print({ scheduleId }, cmd.optsWithGlobals().json, () => `scheduled ${scheduleId}`);
    });

  program
    .command('schedules [conversationId]')
    .description('list scheduled resumes')
    .action(async (id: string | undefined, _o, cmd) => {
      const rows = await withClient((client) => client.listScheduledResumes(id));
      print(rows, cmd.optsWithGlobals().json, () =>
        rows.length === 0
          ? 'no scheduled resumes'
          : rows
              .map(
                (r) =>
                  `${r.scheduleId}\t${r.conversationId}\tnext ${r.nextActionTimes[0]?.toISOString() ?? '-'}${r.message ? `\tmessage: ${r.message}` : ''}`,
              )
              .join('\n'),
      );
    });

  program
    .command('unschedule <scheduleId>')
    .description('cancel a scheduled resume')
    .action(async (scheduleId: string, _o, cmd) => {
      await withClient((client) => client.cancelScheduledResume(scheduleId));
      print({ cancelled: scheduleId }, cmd.optsWithGlobals().json, () => `cancelled ${scheduleId}`);
    });
}
