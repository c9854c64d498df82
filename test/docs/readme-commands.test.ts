// Every command README.md gives, run as written (test/docs/rules.ts lists the few rewrites).
import { describeDocGroup } from './run-doc.js';

describeDocGroup('readme');
