/**
 * The commands the documentation tells a user to run, read out of the Markdown files themselves,
 * so that the tests run what the docs say rather than a copy that can drift.
 *
 * A command is either a line of a fenced block tagged `sh` (`bash`, `shell`, `console`), with `\`
 * continuations joined and `#` comments dropped, or an inline code span that starts like an
 * invocation (`npx meshgrad …`, `npm run …`, `node dist/…`, `docker …`, `kubectl …`). Each one keeps
 * its file and line so a failure points at the text to fix.
 */

import { readdirSync, readFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = resolve(fileURLToPath(new URL('../..', import.meta.url)));

export interface DocCommand {
  /** The Markdown file, relative to the repository root. */
  readonly file: string;
  /** 1-based line of the command's first line. */
  readonly line: number;
  /** The command as a shell would read it (continuations joined, comment removed, trimmed). */
  readonly text: string;
  readonly source: 'block' | 'inline';
}

/** Every Markdown file a user reads: README.md, docs/, deploy/README.md and the datasets' READMEs. */
export function docFiles(): string[] {
  const docs = readdirSync(join(REPO, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`);
  const data = readdirSync(join(REPO, 'data'), { withFileTypes: true })
    .filter((d) => d.isDirectory())
    .map((d) => `data/${d.name}/README.md`)
    .filter((f) => safeRead(f) !== undefined);
  return ['README.md', ...docs.sort(), 'deploy/README.md', ...data.sort()];
}

function safeRead(file: string): string | undefined {
  try {
    return readFileSync(join(REPO, file), 'utf8');
  } catch {
    return undefined;
  }
}

const SHELL_TAGS = new Set(['sh', 'bash', 'shell', 'console']);
/** How an inline code span must start to count as a command rather than a name in prose. */
const INLINE_COMMAND = /^(npx meshgrad\b|npm (start|test|ci|run \S+)\b|node (dist|bin)\/|bench\/\S+\.sh |docker (build|run|push|compose -f)\b|kubectl (apply|scale|-n)\b)/;
/** A line in an untagged block that looks like a command: such a block must be tagged `sh`. */
export const LOOKS_LIKE_COMMAND = /^(\$ )?(npx |npm |node |meshgrad |docker |kubectl |bench\/)/;

/** Strips a trailing `# comment` that is outside quotes (the docs' commands quote with ' and "). */
function stripComment(line: string): string {
  let quote: string | null = null;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quote !== null) {
      if (c === quote) quote = null;
    } else if (c === '"' || c === "'") quote = c;
    else if (c === '#' && (i === 0 || /\s/.test(line[i - 1]))) return line.slice(0, i);
  }
  return line;
}

export interface ExtractResult {
  readonly commands: DocCommand[];
  /** Untagged fenced blocks whose lines look like commands (`file:line`), which should be tagged. */
  readonly untaggedCommandBlocks: string[];
}

export function extractCommands(file: string, text: string = readFileSync(join(REPO, file), 'utf8')): ExtractResult {
  const lines = text.split('\n');
  const commands: DocCommand[] = [];
  const untagged: string[] = [];
  let fence: { tag: string; indent: number } | null = null;
  let pending: { line: number; text: string } | null = null;
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i];
    const trimmed = raw.trim();
    if (trimmed.startsWith('```')) {
      fence = fence === null ? { tag: trimmed.slice(3).trim(), indent: raw.length - raw.trimStart().length } : null;
      pending = null;
      continue;
    }
    if (fence !== null) {
      if (!SHELL_TAGS.has(fence.tag)) {
        if (fence.tag === '' && LOOKS_LIKE_COMMAND.test(trimmed)) untagged.push(`${file}:${i + 1}`);
        continue;
      }
      const code = stripComment(raw).trim();
      const continued = code.endsWith('\\');
      const body = continued ? code.slice(0, -1).trim() : code;
      if (pending !== null) pending.text = `${pending.text} ${body}`.trim();
      else if (body !== '') pending = { line: i + 1, text: body };
      if (!continued && pending !== null) {
        commands.push({ file, line: pending.line, text: pending.text, source: 'block' });
        pending = null;
      }
      continue;
    }
    for (const m of raw.matchAll(/`([^`]+)`/g)) {
      const span = m[1].trim();
      if (INLINE_COMMAND.test(span)) commands.push({ file, line: i + 1, text: span, source: 'inline' });
    }
  }
  return { commands, untaggedCommandBlocks: untagged };
}

/** All commands of all doc files, in file order, then line order. */
export function allDocCommands(): ExtractResult {
  const commands: DocCommand[] = [];
  const untagged: string[] = [];
  for (const f of docFiles()) {
    const r = extractCommands(f);
    commands.push(...r.commands);
    untagged.push(...r.untaggedCommandBlocks);
  }
  return { commands, untaggedCommandBlocks: untagged };
}

export const where = (c: DocCommand): string => `${c.file}:${c.line}`;
export const fromRepo = (path: string): string => relative(REPO, path);
