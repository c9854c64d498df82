// `local --help` describes what `local` does with the coordinator options it overrides.
import { describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';

describe('meshgrad local --help', () => {
  it('gives local defaults, not the coordinator service defaults', async () => {
    const { code, stdout } = await runCli(['local', '--help']);
    expect(code).toBe(0);
    const help = stdout.replace(/\s+/g, ' ');
    expect(help).toContain('(default: "127.0.0.1", env: MESHGRAD_HOST)');
    expect(help).not.toMatch(/--host <addr> [^-]*0\.0\.0\.0/);
    expect(help).not.toContain('7070');
    expect(help).toMatch(/--token <secret> [^-]*a fresh random one/);
    expect(help).not.toMatch(/required: this or --token-file/);
    expect(help).toMatch(/--min-workers <n> [^-]*default: the --workers count/);
    expect(help).toMatch(/--threads <n> threads in all, divided evenly among the worker processes/);
  });

  it('coordinator --help keeps the service defaults', async () => {
    const { stdout } = await runCli(['coordinator', '--help']);
    const help = stdout.replace(/\s+/g, ' ');
    expect(help).toContain('"0.0.0.0"');
    expect(help).toContain('7070');
  });
});
