/**
 * deploy/Dockerfile (read, not built: there is no Docker engine where the tests run) and the
 * coordinator start script the image installs.
 */

import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DEPLOY, REPO, run, withTempDir } from './tools.js';

const dockerfile = readFileSync(join(DEPLOY, 'Dockerfile'), 'utf8');
/** Instructions, one per logical line (continuations joined, comments dropped). */
const instructions = dockerfile
  .replace(/\\\n/g, ' ')
  .split('\n')
  .map((l) => l.trim())
  .filter((l) => l !== '' && !l.startsWith('#'));
const stages = instructions.filter((l) => l.startsWith('FROM '));
const finalStage = instructions.slice(instructions.lastIndexOf(stages[stages.length - 1]));

describe('deploy/Dockerfile', () => {
  it('builds in one node:20-bookworm-slim stage and runs from another', () => {
    expect(instructions).toContain('ARG NODE_IMAGE=node:20-bookworm-slim');
    expect(stages).toEqual(['FROM ${NODE_IMAGE} AS build', 'FROM ${NODE_IMAGE} AS runtime']);
    expect(instructions).toContain('RUN npm run build');
  });

  it('ships production dependencies only, the build output, the launcher and the datasets', () => {
    expect(finalStage).toContain('RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force');
    expect(finalStage).toContain('COPY --from=build /src/dist ./dist');
    for (const dir of ['bin', 'data']) expect(finalStage).toContain(`COPY ${dir} ./${dir}`);
  });

  it('runs as the unprivileged node user under tini, with the documented ports', () => {
    expect(finalStage).toContain('USER node');
    expect(finalStage.some((l) => /apt-get install .*\btini\b/.test(l))).toBe(true);
    expect(finalStage).toContain('ENTRYPOINT ["tini", "--", "node", "bin/meshgrad.js"]');
    expect(finalStage).toContain('EXPOSE 7070 9400 9401');
  });

  it('never bakes a token in', () => {
    expect(dockerfile).not.toMatch(/MESHGRAD_TOKEN|secrets\/token/);
    const ignore = readFileSync(join(DEPLOY, 'Dockerfile.dockerignore'), 'utf8').split('\n');
    for (const entry of ['node_modules', 'dist', 'runs', '.git', 'deploy/secrets']) expect(ignore).toContain(entry);
  });

  it('copies only paths that exist in the repository', () => {
    for (const line of instructions.filter((l) => l.startsWith('COPY ') && !l.includes('--from='))) {
      const sources = line.replace(/--chmod=\S+\s+/, '').split(/\s+/).slice(1, -1);
      for (const src of sources) expect(existsSync(join(REPO, src)), `${line}: ${src}`).toBe(true);
    }
  });
});

describe('deploy/coordinator-entrypoint.sh (meshgrad-coordinator in the image)', () => {
  interface Volume {
    checkpoint?: boolean;
    /** The content of summary.json, when there is one. */
    summary?: string;
  }

  /** Runs the script on a volume laid out as `volume`, with a stand-in `node` that prints its arguments. */
  function start(volume: Volume | undefined, args: string[]): { status: number | null; argv: string[]; stderr: string } {
    return withTempDir((dir) => {
      const fakeNode = join(dir, 'node');
      // `node -e` (the summary check) runs the real node; the launch itself is only printed.
      writeFileSync(fakeNode, `#!/bin/sh\nif [ "$1" = "-e" ]; then exec "${process.execPath}" "$@"; fi\nprintf "%s\\n" "$@"\n`);
      chmodSync(fakeNode, 0o755);
      const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, MESHGRAD_NODE: fakeNode, MESHGRAD_HOME: '/app' };
      if (volume) {
        const vol = join(dir, 'volume');
        mkdirSync(vol);
        env.MESHGRAD_CHECKPOINT_DIR = vol;
        env.MESHGRAD_SUMMARY_JSON = join(vol, 'summary.json');
        if (volume.checkpoint) writeFileSync(join(vol, 'latest.safetensors'), '');
        if (volume.summary !== undefined) writeFileSync(join(vol, 'summary.json'), volume.summary);
      }
      const r = run('sh', [join(DEPLOY, 'coordinator-entrypoint.sh'), ...args], { env });
      return { status: r.status, argv: r.stdout.trim().split('\n').filter(Boolean), stderr: r.stderr };
    });
  }

  it('starts a new run on an empty volume, or without one', () => {
    expect(start({}, ['--model=cnn', '--epochs=3'])).toMatchObject({ status: 0, argv: ['/app/bin/meshgrad.js', 'coordinator', '--model=cnn', '--epochs=3'] });
    expect(start(undefined, ['--model=cnn'])).toMatchObject({ status: 0, argv: ['/app/bin/meshgrad.js', 'coordinator', '--model=cnn'] });
  });

  it('starts the coordinator as given when the run is unfinished (the CLI resumes: MESHGRAD_RESUME=auto)', () => {
    const given = ['/app/bin/meshgrad.js', 'coordinator', '--model=cnn', '--epochs=3'];
    expect(start({ checkpoint: true }, ['--model=cnn', '--epochs=3'])).toMatchObject({ status: 0, argv: given });
    const stopped = JSON.stringify({ interrupted: true, steps: 40 }, null, 2);
    expect(start({ checkpoint: true, summary: stopped }, ['--model=cnn', '--epochs=3'])).toMatchObject({ status: 0, argv: given });
    expect(start({ checkpoint: true, summary: 'not json' }, ['--model=cnn', '--epochs=3'])).toMatchObject({ status: 0, argv: given });
  });

  it('does not run a finished run again', () => {
    const finished = JSON.stringify({ interrupted: false, steps: 1407 }, null, 2);
    const r = start({ checkpoint: true, summary: finished }, ['--model=cnn']);
    expect(r).toMatchObject({ status: 0, argv: [] });
    expect(r.stderr).toMatch(/already finished/);
  });
});
