// AssemblyScript. Single-precision matrix multiply with 128-bit SIMD.
//
// C[m, n] (=|+=) op(A)·op(B) for a range of batch members, op transposing an operand stored
// transposed: A(i, p) is read at a[i·k + p] or, transposed, a[p·m + i]; B(p, j) at b[p·n + j] or
// b[j·k + p]. Member t reads a + t·aStride, b + t·bStride (a stride of 0 broadcasts one matrix)
// and writes c + t·m·n floats.
//
// The register tile is MR x NR = 4 x 8: four "S rows" times eight "V lanes" (two v128), eight
// accumulators (16 vector registers exist on x86 for wasm SIMD; FMA latency 4 x 2 per cycle needs
// eight chains; this tile has measured ~53 GFLOPS on large squares, near the core's FMA peak, so
// a larger one has little to win, and 12 accumulators leave V8 no spare register). On a Zen 3 VM
// (V8 11.3) the tile alone reaches only 24-31 GFLOPS; 6x8, 4x12 and a 2-step unroll were all
// slower there, V8 spilling accumulators (docs/benchmarks.md, models suite). One operand is *splatted* (S: one float broadcast
// per row and step of k), the other *vectored* (V: eight consecutive output elements per step of
// k) from packed panels. Which is which is the call's orientation:
//   - normal:  S = op(A) (tile rows are rows i of C), V = op(B) (lanes are columns j of C);
//   - swapped: S = op(B)ᵀ (tile rows are columns j), V = op(A)ᵀ (lanes are rows i), and the tile is
//     transposed (two 4x4 in-register transposes) as it is stored.
// The caller picks the orientation (wasm-backend.ts, gemmPlan): the one whose V dimension wastes
// fewer lanes, needs no transposing pack, or is broadcast across the batch (then packed once for
// all members: F_PACK_ONCE) — e.g. a convolution's weight, x·Wᵀ with a small batch.
//
// Layouts. S(r, p) is at sBase + r·srs + p·sps (bytes), V(l, p) at vBase + l·vls + p·vps.
//   - "Row-major" S (sps = 4: A untransposed, or Bᵀ when B is stored transposed): read in place
//     through four row pointers when the lane group is narrow (IN_PLACE_MAX_LANES: nothing to
//     share a pack with), else packed into spack as [kc][4] floats by 4x4 transposes (packSRows).
//   - "p-major" S (srs = 4: the strip's four values of a step are consecutive): copied into spack,
//     one v128 per step (packSStrip).
//   - V panels are [kc][8] floats, one after another for the lanes of a group. Lane-contiguous
//     sources (vls = 4) are copied step by step across the whole group, one contiguous run per
//     step (packVLanes); p-contiguous sources (vps = 4: B stored transposed, A untransposed when
//     swapped) are read as eight lane rows, four steps at a time, transposed 4x4 in registers
//     (packVSteps). Nothing is ever read outside the operands: partial strips and panels repeat
//     their last row / lane, or pad with zeros, and the partial tile goes through a scratch tile.
//
// Numerical contract. Every element of C is, per block of k, one chain of multiply-adds in
// increasing p starting from 0 (fused where the relaxed-SIMD build is used), then stored or added
// to C; the blocks are cut by gemmBlockK(k), which depends on k alone. Swapping the orientation only
// swaps the factors of each product, which IEEE multiplication and fma do not see; tails (rows or
// lanes past the matrix) are computed on clamped or duplicated data and never stored. So the
// bits of every element are the same whichever orientation, packing, tile position, batch/row/
// column range or thread computes it — the thread pool relies on this.
//
// Blocking: k in blocks of gemmBlockK(k) ≤ KC_MAX steps (so a V panel is ≤ 8 KiB and an S strip
// ≤ 4 KiB, both in L1); V lanes in groups whose packed panels fit GROUP_BYTES (L2); for each group,
// every strip of 4 S rows runs across the group's panels. The pool (wasm-backend.ts) cuts a call
// into pieces of whole members, strips or panels, each run by one gemmBatch call.

import { madd } from './simd';

const MR: i32 = 4;
const NR: i32 = 8;
const KC_MAX: i32 = 256;
/** Packed V panels of one group of lanes: about a third of this core's 512 KiB L2. */
const GROUP_BYTES: i32 = 192 << 10;
const TILE_BYTES: i32 = MR * NR * 4;
const SPACK_BYTES: i32 = KC_MAX * MR * 4;
/**
 * Row-major S is read in place when a lane group has at most this many lanes (few panels to share
 * a packed strip); otherwise it is packed like p-major S: the packed kernel addresses the four
 * splats from one pointer, which measured up to ~10% faster (noisy) once a strip feeds several
 * panels, while for one panel the pack is not repaid (n = 8: in place twice as fast).
 */
const IN_PLACE_MAX_LANES: i32 = 32;

// Epilogue modes of a tile.
const STORE: i32 = 0;
const ADD: i32 = 1;
const T_STORE: i32 = 2;
const T_ADD: i32 = 3;
/** Write the accumulators to a [4][8] scratch tile (partial tiles; storeEdge copies them out). */
const TO_TILE: i32 = 4;

// flags of gemmBatch
const F_TRANS_A: i32 = 1;
const F_TRANS_B: i32 = 2;
const F_ACCUMULATE: i32 = 4;
const F_SWAP: i32 = 8;
const F_PACK_ONCE: i32 = 16;

/** The length of the k blocks: k cut into equal blocks of at most KC_MAX (k alone decides it). */
export function gemmBlockK(k: i32): i32 {
  if (k <= 0) return 0;
  const blocks = (k + KC_MAX - 1) / KC_MAX;
  return (k + blocks - 1) / blocks;
}

/** Lanes per group: as many 8-lane panels of kc steps as GROUP_BYTES holds (at least one). */
// @ts-ignore: decorator
@inline function groupLanes(kc: i32): i32 {
  return max(1, GROUP_BYTES / (max(kc, 1) * NR * 4)) * NR;
}

/**
 * Bytes of scratch for gemmBatch over `lanes` V lanes: the edge tile, the S strip, and the packed V
 * panels of one group (packOnce: of every block and every lane, kept for all members).
 */
export function gemmScratchFor(k: i32, lanes: i32, packOnce: bool): i32 {
  const kc = gemmBlockK(k);
  const lp = ((max(lanes, 0) + NR - 1) / NR) * NR;
  const v = packOnce ? lp * max(k, 0) : min(lp, groupLanes(kc)) * kc;
  return TILE_BYTES + SPACK_BYTES + v * 4;
}

/** Legacy: bytes of scratch for gemm over `cols` columns (enough for any k). */
export function gemmScratchBytes(cols: i32): i32 {
  const lp = ((max(cols, 0) + NR - 1) / NR) * NR;
  return TILE_BYTES + SPACK_BYTES + lp * KC_MAX * 4;
}

// ---- packing ------------------------------------------------------------------------------------

/** Panels packed together, step by step, from a lane-contiguous source (see packVLanes). */
const LANE_PANELS: i32 = 4;

/**
 * The V panels of `lanes` consecutive lanes from a lane-contiguous source (step p's lanes at
 * src + p·ps): panel q, [kc][8] floats, at dst + q·kc·32 bytes; lanes past `lanes` are zero. Four
 * panels at a time, step by step, so each step reads one 128-byte run (a long row stride — A stored
 * transposed, a wide B — then costs a page per four panels, not per panel) while writing only four
 * streams: the panels lie kc·32 bytes apart, often a multiple of 4 KiB, so more streams would land
 * in one L1 set.
 */
function packVLanes(src: usize, ps: usize, lanes: i32, kc: i32, dst: usize): void {
  const panelBytes = <usize>kc << 5;
  for (let l0 = 0; l0 < lanes; l0 += LANE_PANELS * NR) {
    const here = min(LANE_PANELS * NR, lanes - l0);
    const full = here / NR;
    const tail = here - full * NR;
    let row = src + (<usize>l0 << 2);
    let out = dst + <usize>(l0 / NR) * panelBytes;
    for (let p = 0; p < kc; p++) {
      let from = row;
      let to = out;
      for (let q = 0; q < full; q++) {
        v128.store(to, v128.load(from));
        v128.store(to, v128.load(from, 16), 16);
        from += 32;
        to += panelBytes;
      }
      if (tail) for (let l = 0; l < NR; l++) store<f32>(to + (<usize>l << 2), l < tail ? load<f32>(from + (<usize>l << 2)) : 0);
      row += ps;
      out += 32;
    }
  }
}

/**
 * A V panel from a p-contiguous source: lane l's steps are at src + l·ls + 4·p (B stored
 * transposed; A untransposed when swapped). Eight lane rows are read four steps at a time and
 * transposed in registers (two 4x4 transposes: unpack low/high pairs, then move 64-bit halves), so
 * each round stores four [8]-float rows of the panel. Lanes past `lanes` repeat the last lane (read
 * from valid memory; their results are never stored); steps past the last multiple of 4 are copied
 * one float at a time.
 */
function packVSteps(src: usize, ls: usize, lanes: i32, kc: i32, dst: usize): void {
  const last = <usize>(lanes - 1);
  const l0 = src;
  const l1 = src + <usize>min<usize>(1, last) * ls;
  const l2 = src + <usize>min<usize>(2, last) * ls;
  const l3 = src + <usize>min<usize>(3, last) * ls;
  const l4 = src + <usize>min<usize>(4, last) * ls;
  const l5 = src + <usize>min<usize>(5, last) * ls;
  const l6 = src + <usize>min<usize>(6, last) * ls;
  const l7 = src + <usize>min<usize>(7, last) * ls;
  let p = 0;
  let o: usize = 0;
  for (; p + 4 <= kc; p += 4) {
    const r0 = v128.load(l0 + o), r1 = v128.load(l1 + o), r2 = v128.load(l2 + o), r3 = v128.load(l3 + o);
    const r4 = v128.load(l4 + o), r5 = v128.load(l5 + o), r6 = v128.load(l6 + o), r7 = v128.load(l7 + o);
    // lanes 0-3
    let t0 = f32x4.shuffle(r0, r1, 0, 4, 1, 5);
    let t1 = f32x4.shuffle(r0, r1, 2, 6, 3, 7);
    let t2 = f32x4.shuffle(r2, r3, 0, 4, 1, 5);
    let t3 = f32x4.shuffle(r2, r3, 2, 6, 3, 7);
    v128.store(dst, f32x4.shuffle(t0, t2, 0, 1, 4, 5));
    v128.store(dst, f32x4.shuffle(t0, t2, 2, 3, 6, 7), 32);
    v128.store(dst, f32x4.shuffle(t1, t3, 0, 1, 4, 5), 64);
    v128.store(dst, f32x4.shuffle(t1, t3, 2, 3, 6, 7), 96);
    // lanes 4-7
    t0 = f32x4.shuffle(r4, r5, 0, 4, 1, 5);
    t1 = f32x4.shuffle(r4, r5, 2, 6, 3, 7);
    t2 = f32x4.shuffle(r6, r7, 0, 4, 1, 5);
    t3 = f32x4.shuffle(r6, r7, 2, 6, 3, 7);
    v128.store(dst, f32x4.shuffle(t0, t2, 0, 1, 4, 5), 16);
    v128.store(dst, f32x4.shuffle(t0, t2, 2, 3, 6, 7), 48);
    v128.store(dst, f32x4.shuffle(t1, t3, 0, 1, 4, 5), 80);
    v128.store(dst, f32x4.shuffle(t1, t3, 2, 3, 6, 7), 112);
    o += 16;
    dst += 128;
  }
  for (; p < kc; p++) {
    store<f32>(dst, load<f32>(l0 + o));
    store<f32>(dst, load<f32>(l1 + o), 4);
    store<f32>(dst, load<f32>(l2 + o), 8);
    store<f32>(dst, load<f32>(l3 + o), 12);
    store<f32>(dst, load<f32>(l4 + o), 16);
    store<f32>(dst, load<f32>(l5 + o), 20);
    store<f32>(dst, load<f32>(l6 + o), 24);
    store<f32>(dst, load<f32>(l7 + o), 28);
    o += 4;
    dst += 32;
  }
}

/** The V panels of lanes [l0, l1), steps [p0, p0 + kc): panel q at dst + q·kc·32 bytes. */
function packV(vB: usize, contiguousLanes: bool, vls: usize, vps: usize, l0: i32, l1: i32, p0: i32, kc: i32, dst: usize): void {
  const src = vB + <usize>l0 * vls + <usize>p0 * vps;
  if (contiguousLanes) {
    packVLanes(src, vps, l1 - l0, kc, dst);
    return;
  }
  const panelBytes = <usize>kc << 5;
  for (let l = l0; l < l1; l += NR) {
    packVSteps(vB + <usize>l * vls + <usize>p0 * vps, vls, min(NR, l1 - l), kc, dst);
    dst += panelBytes;
  }
}

/**
 * A strip of p-major S (its `rows` ≤ 4 values of one step are consecutive, steps sps bytes apart)
 * into [kc][4] floats: one v128 per step; a partial strip repeats its last row.
 */
function packSStrip(src: usize, sps: usize, rows: i32, kc: i32, dst: usize): void {
  if (rows == MR) {
    for (let p = 0; p < kc; p++) {
      v128.store(dst, v128.load(src));
      src += sps;
      dst += 16;
    }
    return;
  }
  const last = <usize>(rows - 1);
  const o1 = min<usize>(1, last) << 2;
  const o2 = min<usize>(2, last) << 2;
  const o3 = min<usize>(3, last) << 2;
  for (let p = 0; p < kc; p++) {
    store<f32>(dst, load<f32>(src));
    store<f32>(dst, load<f32>(src + o1), 4);
    store<f32>(dst, load<f32>(src + o2), 8);
    store<f32>(dst, load<f32>(src + o3), 12);
    src += sps;
    dst += 16;
  }
}

/**
 * A strip of row-major S (row r's steps consecutive at src + r·srs) into [kc][4] floats: four steps
 * of the four rows per round, transposed in registers; a partial strip repeats its last row.
 */
function packSRows(src: usize, srs: usize, rows: i32, kc: i32, dst: usize): void {
  const last = <usize>(rows - 1);
  const s0 = src;
  const s1 = src + min<usize>(1, last) * srs;
  const s2 = src + min<usize>(2, last) * srs;
  const s3 = src + min<usize>(3, last) * srs;
  let p = 0;
  let o: usize = 0;
  for (; p + 4 <= kc; p += 4) {
    const r0 = v128.load(s0 + o), r1 = v128.load(s1 + o), r2 = v128.load(s2 + o), r3 = v128.load(s3 + o);
    const t0 = f32x4.shuffle(r0, r1, 0, 4, 1, 5);
    const t1 = f32x4.shuffle(r0, r1, 2, 6, 3, 7);
    const t2 = f32x4.shuffle(r2, r3, 0, 4, 1, 5);
    const t3 = f32x4.shuffle(r2, r3, 2, 6, 3, 7);
    v128.store(dst, f32x4.shuffle(t0, t2, 0, 1, 4, 5));
    v128.store(dst, f32x4.shuffle(t0, t2, 2, 3, 6, 7), 16);
    v128.store(dst, f32x4.shuffle(t1, t3, 0, 1, 4, 5), 32);
    v128.store(dst, f32x4.shuffle(t1, t3, 2, 3, 6, 7), 48);
    o += 16;
    dst += 64;
  }
  for (; p < kc; p++) {
    store<f32>(dst, load<f32>(s0 + o));
    store<f32>(dst, load<f32>(s1 + o), 4);
    store<f32>(dst, load<f32>(s2 + o), 8);
    store<f32>(dst, load<f32>(s3 + o), 12);
    o += 4;
    dst += 16;
  }
}

// ---- the tile -----------------------------------------------------------------------------------

/**
 * Stores a 4 x 8 tile: rows r at out + r·ldc (STORE/ADD), or transposed (T_STORE/T_ADD: row r of
 * the tile is column r of C, lane q is row q of C: C[q][r] at out + q·ldc + 4r), or into a [4][8]
 * scratch tile (TO_TILE). ADD modes add the tile to what C holds.
 */
// @ts-ignore: decorator
@inline function epilogue(c00: v128, c01: v128, c10: v128, c11: v128, c20: v128, c21: v128, c30: v128, c31: v128, out: usize, ldc: usize, mode: i32): void {
  if (mode == STORE || mode == ADD) {
    if (mode == ADD) {
      c00 = f32x4.add(c00, v128.load(out)); c01 = f32x4.add(c01, v128.load(out, 16));
      c10 = f32x4.add(c10, v128.load(out + ldc)); c11 = f32x4.add(c11, v128.load(out + ldc, 16));
      c20 = f32x4.add(c20, v128.load(out + 2 * ldc)); c21 = f32x4.add(c21, v128.load(out + 2 * ldc, 16));
      c30 = f32x4.add(c30, v128.load(out + 3 * ldc)); c31 = f32x4.add(c31, v128.load(out + 3 * ldc, 16));
    }
    v128.store(out, c00); v128.store(out, c01, 16);
    v128.store(out + ldc, c10); v128.store(out + ldc, c11, 16);
    v128.store(out + 2 * ldc, c20); v128.store(out + 2 * ldc, c21, 16);
    v128.store(out + 3 * ldc, c30); v128.store(out + 3 * ldc, c31, 16);
  } else if (mode == TO_TILE) {
    v128.store(out, c00); v128.store(out, c01, 16);
    v128.store(out, c10, 32); v128.store(out, c11, 48);
    v128.store(out, c20, 64); v128.store(out, c21, 80);
    v128.store(out, c30, 96); v128.store(out, c31, 112);
  } else {
    // Lanes 0-3: transpose (c00, c10, c20, c30) into rows q = 0..3 of C, each 4 columns wide.
    let t0 = f32x4.shuffle(c00, c10, 0, 4, 1, 5);
    let t1 = f32x4.shuffle(c00, c10, 2, 6, 3, 7);
    let t2 = f32x4.shuffle(c20, c30, 0, 4, 1, 5);
    let t3 = f32x4.shuffle(c20, c30, 2, 6, 3, 7);
    let q0 = f32x4.shuffle(t0, t2, 0, 1, 4, 5);
    let q1 = f32x4.shuffle(t0, t2, 2, 3, 6, 7);
    let q2 = f32x4.shuffle(t1, t3, 0, 1, 4, 5);
    let q3 = f32x4.shuffle(t1, t3, 2, 3, 6, 7);
    // Lanes 4-7: rows q = 4..7.
    t0 = f32x4.shuffle(c01, c11, 0, 4, 1, 5);
    t1 = f32x4.shuffle(c01, c11, 2, 6, 3, 7);
    t2 = f32x4.shuffle(c21, c31, 0, 4, 1, 5);
    t3 = f32x4.shuffle(c21, c31, 2, 6, 3, 7);
    let q4 = f32x4.shuffle(t0, t2, 0, 1, 4, 5);
    let q5 = f32x4.shuffle(t0, t2, 2, 3, 6, 7);
    let q6 = f32x4.shuffle(t1, t3, 0, 1, 4, 5);
    let q7 = f32x4.shuffle(t1, t3, 2, 3, 6, 7);
    if (mode == T_ADD) {
      q0 = f32x4.add(q0, v128.load(out)); q1 = f32x4.add(q1, v128.load(out + ldc));
      q2 = f32x4.add(q2, v128.load(out + 2 * ldc)); q3 = f32x4.add(q3, v128.load(out + 3 * ldc));
      q4 = f32x4.add(q4, v128.load(out + 4 * ldc)); q5 = f32x4.add(q5, v128.load(out + 5 * ldc));
      q6 = f32x4.add(q6, v128.load(out + 6 * ldc)); q7 = f32x4.add(q7, v128.load(out + 7 * ldc));
    }
    v128.store(out, q0); v128.store(out + ldc, q1); v128.store(out + 2 * ldc, q2); v128.store(out + 3 * ldc, q3);
    v128.store(out + 4 * ldc, q4); v128.store(out + 5 * ldc, q5); v128.store(out + 6 * ldc, q6); v128.store(out + 7 * ldc, q7);
  }
}

/**
 * One tile from row-major S read in place: rows at s0..s3 (consecutive floats per step), V panel
 * [kc][8] at vp. (Unrolling by four steps, so that the splats address with constant offsets, was
 * measured 20-30% slower: V8 then spills accumulators.)
 */
function tileRows(s0: usize, s1: usize, s2: usize, s3: usize, vp: usize, kc: i32, out: usize, ldc: usize, mode: i32): void {
  let c00 = f32x4.splat(0), c01 = f32x4.splat(0);
  let c10 = f32x4.splat(0), c11 = f32x4.splat(0);
  let c20 = f32x4.splat(0), c21 = f32x4.splat(0);
  let c30 = f32x4.splat(0), c31 = f32x4.splat(0);
  for (let p = 0; p < kc; p++) {
    const b0 = v128.load(vp), b1 = v128.load(vp, 16);
    let a = v128.load32_splat(s0); c00 = madd(a, b0, c00); c01 = madd(a, b1, c01);
    a = v128.load32_splat(s1); c10 = madd(a, b0, c10); c11 = madd(a, b1, c11);
    a = v128.load32_splat(s2); c20 = madd(a, b0, c20); c21 = madd(a, b1, c21);
    a = v128.load32_splat(s3); c30 = madd(a, b0, c30); c31 = madd(a, b1, c31);
    s0 += 4; s1 += 4; s2 += 4; s3 += 4;
    vp += 32;
  }
  epilogue(c00, c01, c10, c11, c20, c21, c30, c31, out, ldc, mode);
}

/** One tile from a packed S strip ([kc][4] at sp) and a V panel ([kc][8] at vp). */
function tilePacked(sp: usize, vp: usize, kc: i32, out: usize, ldc: usize, mode: i32): void {
  let c00 = f32x4.splat(0), c01 = f32x4.splat(0);
  let c10 = f32x4.splat(0), c11 = f32x4.splat(0);
  let c20 = f32x4.splat(0), c21 = f32x4.splat(0);
  let c30 = f32x4.splat(0), c31 = f32x4.splat(0);
  for (let p = 0; p < kc; p++) {
    const b0 = v128.load(vp), b1 = v128.load(vp, 16);
    let a = v128.load32_splat(sp); c00 = madd(a, b0, c00); c01 = madd(a, b1, c01);
    a = v128.load32_splat(sp, 4); c10 = madd(a, b0, c10); c11 = madd(a, b1, c11);
    a = v128.load32_splat(sp, 8); c20 = madd(a, b0, c20); c21 = madd(a, b1, c21);
    a = v128.load32_splat(sp, 12); c30 = madd(a, b0, c30); c31 = madd(a, b1, c31);
    sp += 16;
    vp += 32;
  }
  epilogue(c00, c01, c10, c11, c20, c21, c30, c31, out, ldc, mode);
}

/**
 * A partial strip of one S row (at s, sstep bytes per step) against four panels (v0..v3): 32 lanes,
 * eight accumulators like a full tile, so a lone row costs a quarter of four 4 x 8 tiles. Writes a
 * [1][32] scratch tile.
 */
function tileWide1(s: usize, sstep: usize, v0: usize, v1: usize, v2: usize, v3: usize, kc: i32, tile: usize): void {
  let c0 = f32x4.splat(0), c1 = f32x4.splat(0), c2 = f32x4.splat(0), c3 = f32x4.splat(0);
  let c4 = f32x4.splat(0), c5 = f32x4.splat(0), c6 = f32x4.splat(0), c7 = f32x4.splat(0);
  for (let p = 0; p < kc; p++) {
    const a = v128.load32_splat(s);
    c0 = madd(a, v128.load(v0), c0); c1 = madd(a, v128.load(v0, 16), c1);
    c2 = madd(a, v128.load(v1), c2); c3 = madd(a, v128.load(v1, 16), c3);
    c4 = madd(a, v128.load(v2), c4); c5 = madd(a, v128.load(v2, 16), c5);
    c6 = madd(a, v128.load(v3), c6); c7 = madd(a, v128.load(v3, 16), c7);
    s += sstep;
    v0 += 32; v1 += 32; v2 += 32; v3 += 32;
  }
  v128.store(tile, c0); v128.store(tile, c1, 16); v128.store(tile, c2, 32); v128.store(tile, c3, 48);
  v128.store(tile, c4, 64); v128.store(tile, c5, 80); v128.store(tile, c6, 96); v128.store(tile, c7, 112);
}

/** Two S rows (sa, sb) against two panels (v0, v1): a [2][16] scratch tile, eight accumulators. */
function tileWide2(sa: usize, sb: usize, sstep: usize, v0: usize, v1: usize, kc: i32, tile: usize): void {
  let c00 = f32x4.splat(0), c01 = f32x4.splat(0), c02 = f32x4.splat(0), c03 = f32x4.splat(0);
  let c10 = f32x4.splat(0), c11 = f32x4.splat(0), c12 = f32x4.splat(0), c13 = f32x4.splat(0);
  for (let p = 0; p < kc; p++) {
    const b0 = v128.load(v0), b1 = v128.load(v0, 16), b2 = v128.load(v1), b3 = v128.load(v1, 16);
    let a = v128.load32_splat(sa);
    c00 = madd(a, b0, c00); c01 = madd(a, b1, c01); c02 = madd(a, b2, c02); c03 = madd(a, b3, c03);
    a = v128.load32_splat(sb);
    c10 = madd(a, b0, c10); c11 = madd(a, b1, c11); c12 = madd(a, b2, c12); c13 = madd(a, b3, c13);
    sa += sstep; sb += sstep;
    v0 += 32; v1 += 32;
  }
  v128.store(tile, c00); v128.store(tile, c01, 16); v128.store(tile, c02, 32); v128.store(tile, c03, 48);
  v128.store(tile, c10, 64); v128.store(tile, c11, 80); v128.store(tile, c12, 96); v128.store(tile, c13, 112);
}

/**
 * Copies the valid `rows` x `lanes` of a scratch tile ([rows][width] floats) to C, transposed when
 * swapped (lane l, row r to out + l·ldc + 4r), adding to C if acc.
 */
function storeEdge(tile: usize, width: i32, rows: i32, lanes: i32, out: usize, ldc: usize, swapped: bool, acc: bool): void {
  for (let r = 0; r < rows; r++) {
    for (let l = 0; l < lanes; l++) {
      const v = load<f32>(tile + (<usize>(r * width + l) << 2));
      const at = swapped ? out + <usize>l * ldc + (<usize>r << 2) : out + <usize>r * ldc + (<usize>l << 2);
      store<f32>(at, acc ? load<f32>(at) + v : v);
    }
  }
}

// ---- entry points -------------------------------------------------------------------------------

/**
 * C = op(A)·op(B) (F_ACCUMULATE: +=) for members [t0, t1), S rows [r0, r1) and V lanes [v0, v1)
 * (S rows / V lanes are rows / columns of C, or columns / rows with F_SWAP). a, b, c and scratch
 * are byte addresses; aStride and bStride are bytes between members (0: broadcast). scratch holds
 * gemmScratchFor(k, v1 − v0, packOnce) bytes, 16-byte aligned. F_PACK_ONCE (only for a V operand
 * broadcast across the members) packs V once for all members of the call.
 */
export function gemmBatch(a: usize, b: usize, c: usize, m: i32, n: i32, k: i32, flags: i32, aStride: usize, bStride: usize, t0: i32, t1: i32, r0: i32, r1: i32, v0: i32, v1: i32, scratch: usize): void {
  const transA = (flags & F_TRANS_A) != 0;
  const transB = (flags & F_TRANS_B) != 0;
  const accumulate = (flags & F_ACCUMULATE) != 0;
  const swap = (flags & F_SWAP) != 0;
  const packOnce = (flags & F_PACK_ONCE) != 0;
  r1 = min(r1, swap ? n : m);
  v1 = min(v1, swap ? m : n);
  if (t0 >= t1 || r0 >= r1 || v0 >= v1) return;
  const ldc = <usize>n << 2;
  const cStride = <usize>m * <usize>n << 2;
  // Where S(r, p) and V(l, p) live, in bytes from the member's base.
  let sBase: usize, sStride: usize, srs: usize, sps: usize, vBase: usize, vStride: usize, vls: usize, vps: usize;
  if (!swap) {
    sBase = a; sStride = aStride; vBase = b; vStride = bStride;
    srs = transA ? 4 : <usize>k << 2; sps = transA ? <usize>m << 2 : 4;
    vls = transB ? <usize>k << 2 : 4; vps = transB ? 4 : <usize>n << 2;
  } else {
    sBase = b; sStride = bStride; vBase = a; vStride = aStride;
    srs = transB ? <usize>k << 2 : 4; sps = transB ? 4 : <usize>n << 2;
    vls = transA ? 4 : <usize>k << 2; vps = transA ? <usize>m << 2 : 4;
  }
  // Steps 4 bytes apart: read in place (then srs is the row stride); otherwise the rows of one step
  // are consecutive (srs = 4) and each strip is packed.
  const sRowMajor = sps == 4;
  const vLanes = vls == 4;
  // The output address of (S row r, V lane l) is c + r·rStep + l·lStep.
  const rStep: usize = swap ? 4 : ldc;
  const lStep: usize = swap ? ldc : 4;
  if (k <= 0) {
    if (accumulate) return;
    for (let t = t0; t < t1; t++) {
      const cb = c + <usize>t * cStride;
      for (let r = r0; r < r1; r++) for (let l = v0; l < v1; l++) store<f32>(cb + <usize>r * rStep + <usize>l * lStep, 0);
    }
    return;
  }
  const kcMax = gemmBlockK(k);
  const gl = groupLanes(kcMax);
  const tile = scratch;
  const spack = scratch + TILE_BYTES;
  const vpack = spack + SPACK_BYTES;
  const lanesPadded = ((v1 - v0 + NR - 1) / NR) * NR;
  if (packOnce) {
    // V is the same matrix for every member: pack every block's panels once, block after block.
    for (let p0 = 0; p0 < k; p0 += kcMax) {
      const kc = min(kcMax, k - p0);
      const blockBase = vpack + (<usize>(p0 * lanesPadded) << 2);
      packV(vBase + <usize>t0 * vStride, vLanes, vls, vps, v0, v1, p0, kc, blockBase);
    }
  }
  for (let t = t0; t < t1; t++) {
    const sB = sBase + <usize>t * sStride;
    const vB = vBase + <usize>t * vStride;
    const cB = c + <usize>t * cStride;
    for (let p0 = 0; p0 < k; p0 += kcMax) {
      const kc = min(kcMax, k - p0);
      const acc = accumulate || p0 > 0;
      const fullMode = swap ? (acc ? T_ADD : T_STORE) : acc ? ADD : STORE;
      for (let g0 = v0; g0 < v1; g0 += gl) {
        const g1 = min(v1, g0 + gl);
        let gpack: usize;
        if (packOnce) gpack = vpack + (<usize>(p0 * lanesPadded + (g0 - v0) * kc) << 2);
        else {
          gpack = vpack;
          packV(vB, vLanes, vls, vps, g0, g1, p0, kc, vpack);
        }
        for (let r = r0; r < r1; r += MR) {
          const rows = min(MR, r1 - r);
          const last = rows - 1;
          // Row-major S: four row pointers (a partial strip repeats its last row); p-major: a packed strip.
          const s0 = sB + <usize>r * srs + (<usize>p0 << 2);
          const s1 = s0 + <usize>min(1, last) * srs;
          const s2 = s0 + <usize>min(2, last) * srs;
          const s3 = s0 + <usize>min(3, last) * srs;
          const inPlace = sRowMajor && g1 - g0 <= IN_PLACE_MAX_LANES;
          if (!sRowMajor) packSStrip(sB + <usize>r * srs + <usize>p0 * sps, sps, rows, kc, spack);
          else if (!inPlace) packSRows(s0, srs, rows, kc, spack);
          if (rows <= 2) {
            // A strip of one or two rows: wide tiles over four or two panels at a time, so the
            // missing rows do not cost whole 4 x 8 tiles (n = 9 → strips of 4, 4 and 1).
            const span = rows == 1 ? 4 * NR : 2 * NR;
            const sa = inPlace ? s0 : spack;
            const sb = inPlace ? s1 : spack + 4;
            const sstep: usize = inPlace ? 4 : 16;
            const panelBytes = <usize>kc << 5;
            for (let l = g0; l < g1; l += span) {
              const lanes = min(span, g1 - l);
              const lastPanel = <usize>((lanes - 1) / NR);
              const vp = gpack + (<usize>((l - g0) * kc) << 2);
              if (rows == 1) tileWide1(sa, sstep, vp, vp + min<usize>(1, lastPanel) * panelBytes, vp + min<usize>(2, lastPanel) * panelBytes, vp + min<usize>(3, lastPanel) * panelBytes, kc, tile);
              else tileWide2(sa, sb, sstep, vp, vp + min<usize>(1, lastPanel) * panelBytes, kc, tile);
              storeEdge(tile, span, rows, lanes, cB + <usize>r * rStep + <usize>l * lStep, ldc, swap, acc);
            }
            continue;
          }
          for (let l = g0; l < g1; l += NR) {
            const lanes = min(NR, g1 - l);
            const vp = gpack + (<usize>((l - g0) * kc) << 2);
            const out = cB + <usize>r * rStep + <usize>l * lStep;
            const full = rows == MR && lanes == NR;
            const dst = full ? out : tile;
            const mode = full ? fullMode : TO_TILE;
            if (inPlace) tileRows(s0, s1, s2, s3, vp, kc, dst, ldc, mode);
            else tilePacked(spack, vp, kc, dst, ldc, mode);
            if (!full) storeEdge(tile, NR, rows, lanes, out, ldc, swap, acc);
          }
        }
      }
    }
  }
}

/**
 * Legacy entry (one matrix, a column range, normal orientation): C[:, j0:j1] = op(A)·op(B)[:, j0:j1]
 * (accumulate: +=); scratch holds gemmScratchBytes(j1 − j0) bytes.
 */
export function gemm(a: usize, b: usize, c: usize, m: i32, n: i32, k: i32, transA: bool, transB: bool, accumulate: bool, j0: i32, j1: i32, scratch: usize): void {
  if (m <= 0 || j1 <= j0) return;
  const flags = (transA ? F_TRANS_A : 0) | (transB ? F_TRANS_B : 0) | (accumulate ? F_ACCUMULATE : 0);
  gemmBatch(a, b, c, m, n, k, flags, 0, 0, 0, 1, 0, m, j0, j1, scratch);
}
