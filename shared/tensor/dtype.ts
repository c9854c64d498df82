/**
 * Element types a tensor can hold. float32 is the training type; float64 exists so that
 * finite-difference gradient checks can run the very same ops without rounding noise.
 */

export type DType = 'float32' | 'float64';
export type FloatArray = Float32Array | Float64Array;

export function allocArray(dtype: DType, length: number): FloatArray {
  return dtype === 'float32' ? new Float32Array(length) : new Float64Array(length);
}

export function dtypeOf(array: FloatArray): DType {
  return array instanceof Float32Array ? 'float32' : 'float64';
}

export function isDType(value: string): value is DType {
  return value === 'float32' || value === 'float64';
}
