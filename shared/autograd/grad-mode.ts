/**
 * Whether ops record the graph for backward. Like PyTorch's grad mode, it is process-wide state,
 * changed only through the scoped `noGrad` / `enableGrad` helpers (restored on exit, also on throw),
 * so nothing can leave it switched off by accident. JavaScript runs ops on one thread, and ops are
 * synchronous, so a scope cannot interleave with another.
 */

let enabled = true;

export function isGradEnabled(): boolean {
  return enabled;
}

function withMode<T>(mode: boolean, fn: () => T): T {
  const previous = enabled;
  enabled = mode;
  try {
    return fn();
  } finally {
    enabled = previous;
  }
}

/** Runs `fn` without recording gradients (evaluation, optimizer bookkeeping, backward rules). */
export function noGrad<T>(fn: () => T): T {
  return withMode(false, fn);
}

export function enableGrad<T>(fn: () => T): T {
  return withMode(true, fn);
}
