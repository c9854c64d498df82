/**
 * The shared token from `--token` / MESHGRAD_TOKEN or `--token-file` / MESHGRAD_TOKEN_FILE (a
 * file holding it, as compose and Kubernetes mount secrets; surrounding whitespace is trimmed).
 */

import { readFileSync } from 'node:fs';
import { Option } from 'commander';

export interface TokenFlags {
  token?: string;
  tokenFile?: string;
}

export function tokenFileOption(): Option {
  return new Option('--token-file <path>', 'read the shared token from this file (instead of --token)').env('MESHGRAD_TOKEN_FILE');
}

/** The token, or undefined when neither source is given; throws naming the problem otherwise. */
export function resolveToken(flags: TokenFlags): string | undefined {
  if (flags.tokenFile === undefined || flags.tokenFile === '') return flags.token || undefined;
  if (flags.token) throw new Error('--token and --token-file are mutually exclusive (check MESHGRAD_TOKEN and MESHGRAD_TOKEN_FILE)');
  let text: string;
  try {
    text = readFileSync(flags.tokenFile, 'utf8');
  } catch (err) {
    throw new Error(`cannot read the token file ${flags.tokenFile}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  const token = text.trim();
  if (!token) throw new Error(`the token file ${flags.tokenFile} is empty`);
  return token;
}
