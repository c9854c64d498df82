// Autograd mechanics: accumulation, noGrad, detach, iterative walk, graph freeing.
import { describe, expect, it } from 'vitest';
import * as F from '../../shared/ops/index.js';

describe('autograd', () => {
  it('accumulates gradients of a tensor used twice, and across backward calls', () => {
    const x = F.tensor([2, 3], [2], { requiresGrad: true });
    F.sum(F.mul(x, x)).backward();
    expect([...x.grad!.dataSync()]).toEqual([4, 6]);
    F.sum(x).backward();
    expect([...x.grad!.dataSync()]).toEqual([5, 7]);
  });
  it('walks a 100,000-op chain without exhausting the call stack', () => {
    const x = F.tensor([1], [1], { requiresGrad: true });
    let y = x;
    for (let i = 0; i < 100_000; i++) y = F.add(y, 1e-6);
    F.sum(y).backward();
    expect(x.grad!.item()).toBe(1);
  });
  it('records nothing under noGrad and for detached tensors', () => {
    const x = F.tensor([1, 2], [2], { requiresGrad: true });
    const y = F.noGrad(() => F.mul(x, 3));
    expect(y.requiresGrad).toBe(false);
    expect(y.node).toBeNull();
    expect(F.mul(x.detach(), 3).requiresGrad).toBe(false);
    expect(F.isGradEnabled()).toBe(true);
  });
  it('restores grad mode after a throw inside noGrad', () => {
    expect(() => F.noGrad(() => { throw new Error('boom'); })).toThrow('boom');
    expect(F.isGradEnabled()).toBe(true);
  });
  it('frees the graph after backward', () => {
    const x = F.tensor([1, 2], [2], { requiresGrad: true });
    const h = F.exp(x);
    const y = F.sum(h);
    y.backward();
    expect(y.node).toBeNull();
    expect(h.node).toBeNull();
  });
  it('does not compute gradients for inputs that do not need them', () => {
    const w = F.tensor([1, 2, 3, 4], [2, 2], { requiresGrad: true });
    const x = F.tensor([1, 1], [1, 2]);
    F.sum(F.matmul(x, w)).backward();
    expect(x.grad).toBeNull();
    expect([...w.grad!.dataSync()]).toEqual([1, 1, 1, 1]);
  });
  it('refuses backward on a non-scalar without a seed gradient, and on a constant', () => {
    const x = F.tensor([1, 2], [2], { requiresGrad: true });
    expect(() => F.mul(x, 2).backward()).toThrow(/one-element/);
    expect(() => F.tensor([1]).backward()).toThrow(/does not require grad/);
  });
});
