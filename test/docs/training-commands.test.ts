// Every command docs/training.md gives, run as written with a step limit (test/docs/rules.ts).
import { describeDocGroup } from './run-doc.js';

describeDocGroup('training');
