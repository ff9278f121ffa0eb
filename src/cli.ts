#!/usr/bin/env node
// The `nestor` command: the program and its exit codes; the commands live in cli/ by what they act on.
import { Command, CommanderError } from 'commander';
import { ConfigError, ConversationError, NestorError } from './errors';
import { addConversationCommands } from './cli/conversation-commands';
import { addScheduleCommands } from './cli/schedule-commands';
import { addPoolCommands } from './cli/pool-commands';
import { addHostCommands } from './cli/host-commands';
import { addServiceCommands } from './cli/service-commands';
import { EXIT } from './cli/output';

export function buildProgram(): Command {
  const program = new Command('nestor')
    .description('Durable AI-agent conversations on Temporal')
    .option('--json', 'print JSON for scripts', false)
    .showHelpAfterError()
    // Errors in the arguments are thrown to main, which exits 2 (bad input) as for any invalid input.
    .exitOverride();
  addConversationCommands(program);
  addScheduleCommands(program);
  addPoolCommands(program);
  addHostCommands(program);
  addServiceCommands(program);
  return program;
}

export async function main(argv = process.argv): Promise<void> {
  try {
    await buildProgram().parseAsync(argv);
  } catch (err) {
    const code = (err as { exitCode?: number }).exitCode;
    if (err instanceof CommanderError) {
      // Commander has printed the message (and help); --help and --version end here with 0.
      process.exitCode = err.exitCode === 0 ? 0 : EXIT.invalid;
    } else if (err instanceof ConversationError) {
      console.error(`error (${err.type}): ${err.message}`);
      process.exitCode = err.type === 'InvalidInput' ? EXIT.invalid : EXIT.failure;
    } else if (err instanceof NestorError) {
      console.error(`error (${err.type}): ${err.message}`);
      process.exitCode = err.type === 'InvalidInput' ? EXIT.invalid : EXIT.failure;
    } else if (err instanceof ConfigError || err instanceof SyntaxError) {
      console.error(`error: ${err.message}`);
      process.exitCode = EXIT.invalid;
    } else {
      console.error(`error: ${(err as Error).message}`);
      process.exitCode = code ?? EXIT.failure;
    }
  }
}

if (require.main === module) void main();
