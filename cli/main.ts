/** The `meshgrad` command line: parses argv and dispatches to the subcommands. */

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command, CommanderError } from 'commander';
import { coordinatorCommand } from '../coordinator/command.js';
import { workerCommand } from '../worker/command.js';
import { localCommand } from './local-command.js';
import { generateCommand } from './generate-command.js';
import { trainCommand } from './train-command.js';
import { specCommand } from './spec-command.js';
import { reportCommand } from './report-command.js';
import { packageRoot } from '../shared/util/paths.js';

/** The version in package.json. */
export function packageVersion(): string {
  return (JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version: string }).version;
}

export async function main(argv: readonly string[]): Promise<number> {
  const out = { write: (line: string) => void process.stdout.write(`${line}\n`) };
  const program = new Command('meshgrad')
    .description('distributed data-parallel neural-network training')
    .version(packageVersion(), '-V, --version', 'print the version and exit')
    .showHelpAfterError(false)
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });
  const interactive = Boolean(process.stdout.isTTY);
  program.addCommand(trainCommand(out, interactive));
  program.addCommand(coordinatorCommand(out, interactive));
  program.addCommand(workerCommand(Boolean(process.stderr.isTTY)));
  program.addCommand(localCommand(out, interactive));
  program.addCommand(generateCommand(out));
  program.addCommand(specCommand(out));
  program.addCommand(reportCommand(out));
  for (const cmd of program.commands) cmd.exitOverride();
  try {
    await program.parseAsync([...argv]);
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode;
    process.stderr.write(`meshgrad: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
}
