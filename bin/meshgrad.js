#!/usr/bin/env node
// The `meshgrad` command: a thin shim over the compiled CLI (built by `npm ci` through `prepare`).
import { main } from '../dist/cli/main.js';

main(process.argv).then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    process.stderr.write(`meshgrad: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
