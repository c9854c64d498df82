/**
 * Protocol error codes. They are part of the wire contract (sent in `error` messages and asserted
 * by tests), so they never change meaning; new problems get new codes.
 */

export const ERROR_CODES = [
  /** The frame is not valid plain msgpack (an extension type or msgpackr record included), or not a map. */
  'UNDECODABLE',
  /** The message's `type` is not one this protocol version knows. */
  'UNKNOWN_TYPE',
  /** A known type with missing or ill-typed fields. */
  'BAD_MESSAGE',
  /** join's protocol version differs from the coordinator's. */
  'VERSION_MISMATCH',
  /** A tensor's dtype is not the expected one. */
  'BAD_DTYPE',
  /** A tensor's shape differs from the parameter's, or its byte length from its shape. */
  'BAD_SHAPE',
  /** A gradient (or loss) holds NaN or ±Infinity. */
  'NON_FINITE',
  /** A gradient for a step or parameter version that is not the current one. */
  'STALE_STEP',
  /** A message that is not valid in the sender's current state (e.g. gradients before join). */
  'UNEXPECTED',
  /** A gradient for work that was not assigned to this worker. */
  'NOT_ASSIGNED',
  /** A frame over the size limit: ws refuses it and closes the connection with 1009 (counted, never sent). */
  'TOO_LARGE',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

/**
 * What could be read of a frame that failed validation: its `type`, and its `step` / `shard` when
 * those fields were well-formed (so a malformed `gradients` frame can still be tied to a shard).
 */
export interface FrameContext {
  readonly type: string;
  readonly step?: number;
  readonly version?: number;
  readonly shard?: number;
}

/** A protocol violation by the peer; `code` goes into the `error` message sent back. */
export class ProtocolError extends Error {
  constructor(readonly code: ErrorCode, message: string, readonly frame?: FrameContext) {
    super(message);
    this.name = 'ProtocolError';
  }
}
