// Every command in the docs has exactly one way to be run (test/docs/rules.ts), every rule and
// rewrite still applies to some command, and what CI runs itself is still in the file that runs it:
// a command added to README.md or docs/ fails here until the suite runs it.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { allDocCommands, docFiles, extractCommands, REPO, where } from './doc-commands.js';
import { groupOf, RULES, rulesFor, type Rewrite } from './rules.js';

const { commands, untaggedCommandBlocks } = allDocCommands();

describe('the docs’ commands', () => {
  it('are found in every file a user reads', () => {
    expect(docFiles()).toEqual(expect.arrayContaining(['README.md', 'docs/training.md', 'docs/benchmarks.md', 'deploy/README.md']));
    for (const f of ['README.md', 'docs/training.md', 'docs/benchmarks.md', 'deploy/README.md']) expect(commands.some((c) => c.file === f), f).toBe(true);
  });

  it('sit in blocks tagged sh, so none is missed', () => {
    expect(untaggedCommandBlocks).toEqual([]);
  });

  it('each match exactly one rule', () => {
    const wrong = commands.map((c) => ({ c, n: rulesFor(c.text).length })).filter((x) => x.n !== 1);
    expect(wrong.map((x) => `${where(x.c)} \`${x.c.text}\`: ${x.n} rules`)).toEqual([]);
  });

  it('leave no rule and no rewrite unused', () => {
    const unusedRules = RULES.filter((r) => !commands.some((c) => r.match.test(c.text))).map((r) => r.id);
    expect(unusedRules).toEqual([]);
    const rewrites = RULES.flatMap((r) => (r.kind === 'run' ? (r.rewrites ?? []).map((w) => ({ rule: r, w })) : []));
    const applies = (rule: (typeof rewrites)[number]['rule'], w: Rewrite): boolean => commands.some((c) => rule.match.test(c.text) && w.from.test(c.text));
    expect(rewrites.filter(({ rule, w }) => !applies(rule, w)).map(({ rule, w }) => `${rule.id}: ${String(w.from)}`)).toEqual([]);
    for (const { w } of rewrites) expect(w.why.length, String(w.from)).toBeGreaterThan(10);
  });

  it('that CI runs itself are still in the file that runs them', () => {
    for (const r of RULES) {
      if (r.kind !== 'ci') continue;
      expect(readFileSync(join(REPO, r.ranBy.file), 'utf8'), `${r.id}: ${r.ranBy.file}`).toContain(r.ranBy.contains);
    }
    expect(readFileSync(join(REPO, 'README.md'), 'utf8')).toContain('npm ci && npm test');
  });

  it('each belong to one of the three test files that run them', () => {
    for (const f of docFiles()) expect(['readme', 'training', 'other']).toContain(groupOf(f));
  });
});

describe('reading commands out of Markdown', () => {
  const sample = [
    'Run `npx meshgrad spec cnn` or name `meshgrad train` in prose.',
    '```sh',
    '# a comment line',
    'npx meshgrad train --model mlp \\',
    '  --epochs 2   # trailing comment',
    "npx meshgrad generate --prompt 'a # b'",
    '```',
    '```',
    'npx meshgrad local --workers 2',
    '```',
    '```json',
    '{"npx meshgrad": 1}',
    '```',
  ].join('\n');
  const r = extractCommands('sample.md', sample);

  it('joins continuations, drops comments outside quotes, keeps line numbers', () => {
    expect(r.commands.map((c) => [c.line, c.source, c.text])).toEqual([
      [1, 'inline', 'npx meshgrad spec cnn'],
      [4, 'block', 'npx meshgrad train --model mlp --epochs 2'],
      [6, 'block', "npx meshgrad generate --prompt 'a # b'"],
    ]);
  });

  it('reports an untagged block that holds a command, and ignores other languages', () => {
    expect(r.untaggedCommandBlocks).toEqual(['sample.md:9']);
  });

  it('a command no rule knows matches none, so the coverage case above would fail on it', () => {
    expect(rulesFor('npx meshgrad frobnicate --all')).toEqual([]);
    expect(rulesFor('docker compose up')).toEqual([]);
  });
});
