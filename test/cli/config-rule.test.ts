// One configuration rule for every command: a flag, else its MESHGRAD_* environment variable, else
// the default; --help names both.
import { describe, expect, it } from 'vitest';
import type { Command } from 'commander';
import { coordinatorCommand } from '../../coordinator/command.js';
import { generateCommand } from '../../cli/generate-command.js';
import { localCommand } from '../../cli/local-command.js';
import { trainCommand } from '../../cli/train-command.js';
import { workerCommand } from '../../worker/command.js';
import { runCli } from '../helpers/cli.js';

const out = { write: () => {} };
const commands: Command[] = [trainCommand(out, false), coordinatorCommand(out, false), workerCommand(false), localCommand(out, false), generateCommand(out)];

describe('flag, then MESHGRAD_* variable, then default', () => {
  it.each(commands.map((c) => [c.name(), c] as const))('every flag of `%s` has a MESHGRAD_ variable, shown by --help', async (name, cmd) => {
    const { code, stdout } = await runCli([name, '--help']);
    expect(code).toBe(0);
    const help = stdout.replace(/\s+/g, ' ');
    for (const option of cmd.options) {
      expect(option.envVar, option.long).toMatch(/^MESHGRAD_[A-Z0-9_]+$/);
      expect(help, option.long).toContain(option.long!);
      expect(help, option.long).toContain(`env: ${option.envVar}`);
    }
  });

  it('the flag wins over the variable, and the variable over the default', async () => {
    // Each run fails fast on a bad value; the message tells which source was used.
    const flagWins = await runCli(['train', '--epochs', '0'], { env: { MESHGRAD_EPOCHS: '2' } });
    expect(flagWins.code).not.toBe(0);
    expect(flagWins.stderr).toMatch(/--epochs.*'0'/);
    const envUsed = await runCli(['train', '--max-steps', '1'], { env: { MESHGRAD_EPOCHS: 'zero' } });
    expect(envUsed.code).not.toBe(0);
    expect(envUsed.stderr).toMatch(/'zero'/);
    expect(envUsed.stderr.trim().split('\n')).toHaveLength(1);
  });
});
