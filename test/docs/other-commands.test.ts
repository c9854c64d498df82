// Every command of the other docs (benchmarks, architecture, deploy/README.md, …), run as written
// (test/docs/rules.ts: benchmarks by --plan, Docker and Kubernetes up to the missing engine).
import { describeDocGroup } from './run-doc.js';

describeDocGroup('other');
