/**
 * Reverse-mode differentiation over the graph recorded by the ops. The walk is iterative (an
 * explicit stack), because an unrolled RNN or a long chain of ops is deeper than JavaScript's call
 * stack. Gradients of intermediate tensors live only in a map during the walk; leaves accumulate
 * into `.grad`. Each node is dropped as soon as it has been processed, so the activations it saved
 * can be collected while backward is still running.
 */

import { Tensor } from '../tensor/tensor.js';
import { formatShape, sameShape } from '../tensor/shape.js';
import { noGrad } from './grad-mode.js';

/** Tensors reachable from `root` through nodes, children before parents. */
function topologicalOrder(root: Tensor): Tensor[] {
  const order: Tensor[] = [];
  const visited = new Set<Tensor>([root]);
  const stack: Array<{ tensor: Tensor; next: number }> = [{ tensor: root, next: 0 }];
  while (stack.length > 0) {
    const top = stack[stack.length - 1];
    const inputs = top.tensor.node?.inputs ?? [];
    if (top.next < inputs.length) {
      const child = inputs[top.next++];
      if (child.requiresGrad && child.node !== null && !visited.has(child)) {
        visited.add(child);
        stack.push({ tensor: child, next: 0 });
      }
    } else {
      stack.pop();
      order.push(top.tensor);
    }
  }
  return order;
}

export interface BackwardOptions {
  /**
   * Called once per leaf that requires grad, as soon as its `.grad` is final: after the last node
   * that takes it as an input has been processed. A distributed worker starts sending the
   * gradients of the last layers while backward is still running through the first ones.
   */
  readonly onLeafReady?: (leaf: Tensor) => void;
}

/** For each leaf input of the graph, the position in `order` of the first node (in the walk, which runs from the end) that takes it. */
function lastUses(order: readonly Tensor[]): Map<number, Tensor[]> {
  const seen = new Set<Tensor>();
  const at = new Map<number, Tensor[]>();
  // The walk visits order[length-1] first and order[0] last: a leaf is final after the visited
  // node with the lowest index among its consumers.
  for (let i = 0; i < order.length; i++) {
    for (const input of order[i].node?.inputs ?? []) {
      if (input.node !== null || !input.requiresGrad || seen.has(input)) continue;
      seen.add(input);
      const list = at.get(i);
      if (list) list.push(input);
      else at.set(i, [input]);
    }
  }
  return at;
}

export function runBackward(root: Tensor, seed?: Tensor, options: BackwardOptions = {}): void {
  if (!root.requiresGrad) throw new Error(`backward() was called on ${root.toString()}, which does not require grad`);
  let start: Tensor;
  if (seed) {
    if (!sameShape(seed.shape, root.shape)) throw new RangeError(`backward() got a gradient of shape ${formatShape(seed.shape)} for a tensor of shape ${formatShape(root.shape)}`);
    start = seed.detach();
  } else {
    if (root.size !== 1) throw new RangeError(`backward() without a gradient needs a one-element tensor, got shape ${formatShape(root.shape)}`);
    start = new Tensor(root.backend, root.backend.fill(root.dtype, 1, 1), root.shape);
  }

  noGrad(() => {
    if (root.node === null) {
      accumulateLeaf(root, start);
      options.onLeafReady?.(root);
      return;
    }
    const order = topologicalOrder(root);
    const ready = options.onLeafReady ? lastUses(order) : null;
    const pending = new Map<Tensor, Tensor>([[root, start]]);
    for (let i = order.length - 1; i >= 0; i--) {
      const tensor = order[i];
      const node = tensor.node;
      const grad = pending.get(tensor);
      pending.delete(tensor);
      tensor.node = null;
      if (node === null || grad === undefined) {
        const done = ready?.get(i);
        if (done) for (const leaf of done) options.onLeafReady!(leaf);
        continue;
      }
      const needed = node.inputs.map((x) => x.requiresGrad);
      const inputGrads = node.backward(grad, needed);
      for (let j = 0; j < node.inputs.length; j++) {
        const input = node.inputs[j];
        const g = inputGrads[j];
        if (!needed[j] || g === null || g === undefined) continue;
        if (!sameShape(g.shape, input.shape)) {
          throw new Error(`internal: backward of '${node.op}' returned a gradient of shape ${formatShape(g.shape)} for input ${j} of shape ${formatShape(input.shape)}`);
        }
        if (input.node === null) accumulateLeaf(input, g);
        else {
          const prev = pending.get(input);
          pending.set(input, prev ? addGrads(prev, g) : g);
        }
      }
      const done = ready?.get(i);
      if (done) for (const leaf of done) options.onLeafReady!(leaf);
    }
  });
}

function accumulateLeaf(leaf: Tensor, g: Tensor): void {
  leaf.grad = leaf.grad ? addGrads(leaf.grad, g) : g.detach();
}

function addGrads(a: Tensor, b: Tensor): Tensor {
  const buffer = a.backend.binary('add', a.buffer, a.shape, b.buffer, b.shape, a.shape);
  return new Tensor(a.backend, buffer, a.shape);
}
