/**
 * Locates the meshgrad package root, so that bundled files (such as data/) can be found both
 * from the sources (shared/util/ under vitest) and from the compiled output (dist/shared/util/).
 */

import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const PACKAGE_NAME = 'meshgrad';

let cached: string | undefined;

/** The directory holding meshgrad's package.json, found by walking up from this file. */
export function packageRoot(): string {
  if (cached !== undefined) return cached;
  const start = dirname(fileURLToPath(import.meta.url));
  let dir = start;
  for (;;) {
    if (isMeshgradRoot(dir)) {
      cached = dir;
      return dir;
    }
    const parent = dirname(dir);
    if (parent === dir) {
      throw new Error(`no package.json with name "${PACKAGE_NAME}" found in ${start} or any directory above it`);
    }
    dir = parent;
  }
}

function isMeshgradRoot(dir: string): boolean {
  const file = join(dir, 'package.json');
  if (!existsSync(file)) return false;
  try {
    const parsed: unknown = JSON.parse(readFileSync(file, 'utf8'));
    return typeof parsed === 'object' && parsed !== null && (parsed as { name?: unknown }).name === PACKAGE_NAME;
  } catch {
    return false;
  }
}
