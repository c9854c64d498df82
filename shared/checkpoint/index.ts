/** Checkpoint files: the safetensors codec, atomic writes, and save/load of a training state. */

export { CheckpointFormatError } from './errors.js';
export { decodeSafetensors, encodeSafetensors, type DecodedSafetensors, type SafeArray, type SafeDtype, type SafeTensor } from './safetensors.js';
export { sweepTempFiles, TEMP_NAME, writeFileAtomic, type SweepResult } from './atomic.js';
export { loadCheckpoint, saveCheckpoint, type CheckpointContents, type CheckpointDtype, type CheckpointParam, type LoadedCheckpoint } from './checkpoint.js';
