/**
 * The error function, needed by exact GELU. JavaScript has no Math.erf.
 *
 * erf64 is accurate to about 1e-15 so that float64 gradient checks of GELU see the true function:
 * the Maclaurin series for |x| < 2.5 (terms grow to ~3 before shrinking, so ~1 digit of
 * cancellation) and the continued fraction for erfc beyond (Lentz's method), where erf is 1 − erfc.
 * erf32 is Abramowitz & Stegun 7.1.26 (max abs error 1.5e-7, about one float32 ulp near 1),
 * several times cheaper, used for float32 tensors where more digits would be rounded away anyway.
 */

const TWO_OVER_SQRT_PI = 2 / Math.sqrt(Math.PI);

export function erf64(x: number): number {
  if (Number.isNaN(x)) return NaN;
  const ax = Math.abs(x);
  if (ax < 2.5) {
    // erf(x) = 2/sqrt(pi) * sum_n (-1)^n x^(2n+1) / (n! (2n+1))
    const x2 = x * x;
    let term = x; // (-1)^n x^(2n+1) / n!
    let sum = x;
    for (let n = 1; n < 80; n++) {
      term *= -x2 / n;
      const add = term / (2 * n + 1);
      sum += add;
      if (Math.abs(add) < 1e-17 * Math.abs(sum)) break;
    }
    return TWO_OVER_SQRT_PI * sum;
  }
  if (ax > 6) return Math.sign(x); // erfc(6) < 2.2e-17
  // erfc(x) = exp(-x^2)/sqrt(pi) * 1/(x + 1/2/(x + 1/(x + 3/2/(x + 2/(x + ...)))))
  // evaluated as the continued fraction K = x + (1/2)/(x + 1/(x + (3/2)/(x + ...))).
  const tiny = 1e-300;
  let f = ax;
  let c = ax;
  let d = 0;
  for (let i = 1; i < 200; i++) {
    const an = i / 2;
    d = ax + an * d;
    d = d === 0 ? tiny : 1 / d;
    c = ax + an / c;
    if (c === 0) c = tiny;
    const delta = c * d;
    f *= delta;
    if (Math.abs(delta - 1) < 1e-16) break;
  }
  const erfc = Math.exp(-ax * ax) / Math.sqrt(Math.PI) / f;
  return Math.sign(x) * (1 - erfc);
}

export function erf32(x: number): number {
  const ax = Math.abs(x);
  const t = 1 / (1 + 0.3275911 * ax);
  const poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
  const y = 1 - poly * Math.exp(-ax * ax);
  return x < 0 ? -y : y;
}
