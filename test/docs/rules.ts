/**
 * How the suite runs each command the docs give (test/docs/doc-commands.ts reads them out of the
 * Markdown). Every command must match exactly one rule, and every rule must match a command, so a
 * new command in the docs fails the suite until it is run here, and a rule cannot outlive its text.
 *
 * - `run`: run as written by bash, in a scratch copy of the checkout's layout, with the listed
 *   rewrites only (each says why, and each must apply); training commands get a step limit
 *   appended (`--max-steps` and `--test-samples`, which override what the text asks for).
 * - `cluster`: the by-hand recipe (a coordinator and workers in separate shells) started together.
 * - `engine`: Docker and Kubernetes commands, run as written against an engine and a cluster that
 *   are not there (DOCKER_HOST and KUBECONFIG point at nothing): flags, paths and files must pass
 *   up to the point of reaching the engine, and the files they name are checked offline
 *   (`docker-compose config`, `kubectl kustomize`).
 * - `ci`: what CI itself runs (`.ci/run`: `npm ci && npm test`, whose pretest builds); the rule
 *   names the file that runs it, and the test checks that file still contains it.
 * - `mention`: a command name inside a sentence, not a command line; the rule says why.
 */

/** Appended to every training command: a few steps and a small evaluation, whatever the text asks. */
export const STEP_LIMIT = '--max-steps 2 --test-samples 100';

export interface Rewrite {
  readonly from: RegExp;
  readonly to: string;
  readonly why: string;
}

interface RuleBase {
  readonly id: string;
  /** Matches the whole command text. */
  readonly match: RegExp;
}

export interface RunRule extends RuleBase {
  readonly kind: 'run';
  readonly rewrites?: readonly Rewrite[];
  /** Append STEP_LIMIT (training commands). */
  readonly limitSteps?: boolean;
  /** Exit status expected (default 0). */
  readonly exitCode?: number;
  /** What the output must show. */
  readonly expect?: RegExp;
  /** Files (relative to the scratch directory) the command must have written. */
  readonly writes?: readonly string[];
  /** Run from the checkout itself instead of the scratch copy (commands that write nothing). */
  readonly inCheckout?: boolean;
}

export interface ClusterRule extends RuleBase {
  readonly kind: 'cluster';
  readonly role: 'coordinator' | 'worker';
}

export interface EngineRule extends RuleBase {
  readonly kind: 'engine';
  readonly tool: 'docker' | 'kubectl';
}

export interface CiRule extends RuleBase {
  readonly kind: 'ci';
  /** A file of the repository that runs this command, and the text it must contain. */
  readonly ranBy: { readonly file: string; readonly contains: string };
}

export interface MentionRule extends RuleBase {
  readonly kind: 'mention';
  readonly why: string;
}

export type Rule = RunRule | ClusterRule | EngineRule | CiRule | MentionRule;

const dropNpmCi: Rewrite = { from: /^npm ci && /, to: '', why: '`npm ci` ran in CI before `npm test`; re-installing in a scratch directory would fetch everything again' };
const benchBuilt: Rewrite = {
  from: /^npm run bench( --)?/,
  to: 'node dist/bench/main.js',
  why: '`npm run bench` is `npm run build && node dist/bench/main.js`; the build is what `npm test` ran first (pretest)',
};
const benchPlan: Rewrite = { from: /$/, to: ' --plan', why: 'a full benchmark takes minutes (tfjs-cpu needs seconds per step); --plan checks the flags and prints what they would run' };

export const RULES: readonly Rule[] = [
  // README.md: set-up
  { id: 'npm-start', kind: 'run', match: /^(npm ci && )?npm start$/, rewrites: [dropNpmCi, { from: /npm start$/, to: `npm start -- ${STEP_LIMIT}`, why: 'the step limit, passed through npm to the script' }], expect: /test accuracy [\d.]+%/, writes: ['runs/mlp/model.safetensors', 'runs/mlp/summary.json'] },
  { id: 'npm-test', kind: 'ci', match: /^(npm ci && )?npm test$/, ranBy: { file: '.ci/run', contains: 'npm ci && npm test' } },
  { id: 'npm-ci', kind: 'ci', match: /^npm ci$/, ranBy: { file: '.ci/run', contains: 'npm ci && npm test' } },
  { id: 'npm-build', kind: 'ci', match: /^npm run build(:wasm)?$/, ranBy: { file: 'package.json', contains: '"pretest": "npm run build && npm run typecheck"' } },
  { id: 'npm-ci-prod', kind: 'ci', match: /^npm ci --omit=dev --ignore-scripts$/, ranBy: { file: 'deploy/Dockerfile', contains: 'RUN npm ci --omit=dev --ignore-scripts' } },
  { id: 'npx-bare', kind: 'run', match: /^npx meshgrad$/, inCheckout: true, exitCode: 1, expect: /Usage: meshgrad \[options\] \[command\][\s\S]*\btrain\b[\s\S]*\blocal\b/ },
  { id: 'npx-version', kind: 'run', match: /^npx meshgrad --version$/, inCheckout: true, expect: /^\d+\.\d+\.\d+\s*$/ },
  { id: 'npx-help', kind: 'run', match: /^npx meshgrad \S+ --help$/, inCheckout: true, expect: /^Usage: meshgrad \S+ \[options\]/ },
  { id: 'spec-list', kind: 'run', match: /^npx meshgrad spec$/, inCheckout: true, expect: /\bmlp\b[\s\S]*\bgpt-tiny\b/ },
  { id: 'spec-to-file', kind: 'run', match: /^npx meshgrad spec \S+ > \S+\.json$/, expect: /^$/, writes: ['my-cnn.json'] },

  // README.md and docs/training.md: training
  {
    id: 'train',
    kind: 'run',
    match: /^npx meshgrad train --(model|module) \S+ .*$/,
    limitSteps: true,
    rewrites: [{ from: /--seed SEED\b/, to: '--seed 1', why: 'SEED is a placeholder for the seed column of the table' }],
    // A classification run ends with its accuracy; a regression run (--loss mse or huber) with its RMSE.
    expect: /test (accuracy [\d.]+%|RMSE [\d.]+)/,
  },
  { id: 'local', kind: 'run', match: /^npx meshgrad local --workers \d+ .*$/, limitSteps: true, expect: /test (accuracy|loss)/ },
  { id: 'generate', kind: 'run', match: /^npx meshgrad generate --checkpoint \S+ .*$/, expect: /^Call me/ },
  // README.md: `meshgrad report` reads the summary the `train … --summary-json run/summary.json`
  // before it wrote (in the same scratch directory), as written: it trains nothing, so no step limit.
  { id: 'report', kind: 'run', match: /^npx meshgrad report \S+( --out \S+)?$/, expect: /^wrote report of [1-9]\d* epoch\(s\) to \S*report\.html$/m, writes: ['run/report.html'] },

  // README.md: the by-hand recipe, and how `local` spawns its workers (docs/benchmarks.md)
  { id: 'cluster-coordinator', kind: 'cluster', role: 'coordinator', match: /^MESHGRAD_TOKEN=\S+ npx meshgrad coordinator --port 7070 .*$/ },
  { id: 'cluster-worker', kind: 'cluster', role: 'worker', match: /^(MESHGRAD_TOKEN=\S+ npx meshgrad worker --connect ws:\/\/COORDINATOR:7070|node bin\/meshgrad\.js worker --connect URL)$/ },

  // docs/benchmarks.md, docs/architecture.md, docs/training.md: benchmarks
  { id: 'bench', kind: 'run', match: /^(npm run bench|node dist\/bench\/main\.js)( -- | |$).*$/, rewrites: [benchBuilt, benchPlan], expect: /^plan: suites / },
  {
    id: 'profile',
    kind: 'run',
    match: /^node dist\/bench\/profile\.js( .*)?$/,
    rewrites: [{ from: /$/, to: ' --model mlp --steps 1', why: 'one profiled step of the smallest preset: the command runs, profiles and prints its table' }],
    expect: /^mlp \(batch 128, wasm, 1 thread\(s\)\): [\d.]+ ms\/step[\s\S]*matmul/m,
  },
  {
    id: 'soak',
    kind: 'run',
    match: /^bench\/soak\.sh \d+ \d+ \/tmp\/soak\/\S+ -- meshgrad train .*$/,
    limitSteps: true,
    rewrites: [{ from: /^bench\/soak\.sh \d+ \d+ \/tmp\/soak\//, to: 'bench/soak.sh 1 600 soak/', why: 'one run instead of several, and a scratch directory instead of /tmp/soak' }],
    expect: /^soak: 1 runs, 0 hangs, 0 failures, 1 distinct results/m,
  },

  // deploy/README.md
  { id: 'token-copy', kind: 'run', match: /^cp deploy\/secrets\/token\.example deploy\/secrets\/token$/, writes: ['deploy/secrets/token'] },
  { id: 'token-secret', kind: 'run', match: /^openssl rand -hex 32 > deploy\/secrets\/token$/, writes: ['deploy/secrets/token'] },
  { id: 'token-mode', kind: 'run', match: /^chmod 0644 deploy\/secrets\/token$/ },
  { id: 'docker', kind: 'engine', tool: 'docker', match: /^docker (build -f \S+|run --rm|push|compose -f \S+) .*$/ },
  { id: 'kubectl', kind: 'engine', tool: 'kubectl', match: /^kubectl (apply -k|-n) .*$/ },
  { id: 'kubectl-scale-name', kind: 'mention', match: /^kubectl scale$/, why: 'README names the subcommand; the full command is deploy/README.md\'s `kubectl -n meshgrad scale …`, run above' },
];

/** The rules that match a command, in order. */
export function rulesFor(text: string): Rule[] {
  return RULES.filter((r) => r.match.test(text));
}

/** Applies a run rule's rewrites and the step limit; `applied` lists the rewrites that matched. */
export function rewriteCommand(rule: RunRule, text: string): { text: string; applied: Rewrite[] } {
  let out = text;
  const applied: Rewrite[] = [];
  for (const r of rule.rewrites ?? []) {
    if (!r.from.test(out)) continue;
    out = out.replace(r.from, r.to);
    applied.push(r);
  }
  if (rule.limitSteps === true) out = `${out} ${STEP_LIMIT}`;
  return { text: out, applied };
}

/** Which test file runs the commands of each doc file (the first occurrence of a text runs it). */
export type DocGroup = 'readme' | 'training' | 'other';
export function groupOf(file: string): DocGroup {
  if (file === 'README.md') return 'readme';
  if (file === 'docs/training.md') return 'training';
  return 'other';
}
