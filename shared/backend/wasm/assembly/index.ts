// AssemblyScript entry: every kernel the wasm backend calls. Built by `npm run build:wasm` into
// dist/wasm/ (a plain-SIMD build and a relaxed-SIMD build with fused multiply-add).
export { gemm, gemmBatch, gemmBlockK, gemmScratchBytes, gemmScratchFor } from './gemm';
export { binary, binaryRows, binaryCols, unary, sumMiddle, sumRows } from './elementwise';
export { im2col, col2im, maxPool } from './window';
export { sumSources, adam } from './optim';
export { unaryTranscendental, gelu, geluBackward, softmaxRows, softmaxBackwardRows, logSoftmaxRows, logSoftmaxBackwardRows, lstmCell, gruCell, relu, layerNormRows, layerNormBackwardRows, lstmCellBackward, copyRuns } from './fused';
