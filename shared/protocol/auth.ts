/**
 * The shared-token check made before a WebSocket upgrade. Tokens are compared through their
 * SHA-256 digests with timingSafeEqual, so the comparison takes the same time whatever the
 * length or content of the guess.
 */

import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

const digest = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest();

export function tokensEqual(expected: string, given: string): boolean {
  return timingSafeEqual(digest(expected), digest(given));
}

/** The token a client presents: `Authorization: Bearer <token>`. */
export function presentedToken(req: IncomingMessage): string | null {
  const header = req.headers.authorization;
  if (typeof header !== 'string') return null;
  const match = /^Bearer\s+(.+)$/i.exec(header.trim());
  return match ? match[1] : null;
}

export function authorize(req: IncomingMessage, expected: string | null): boolean {
  if (expected === null) return true;
  const given = presentedToken(req);
  return given !== null && tokensEqual(expected, given);
}
