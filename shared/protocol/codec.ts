/**
 * Frames ⇄ messages. Plain msgpack (no msgpackr records or extensions: frames holding them are
 * refused with UNDECODABLE), so any msgpack library can speak the protocol. Decoding never throws anything but ProtocolError, with a stable code.
 */

import { Packr, Unpackr } from 'msgpackr';
import { ProtocolError, type FrameContext } from './errors.js';
import { messageSchemas, type Message, type MessageType } from './messages.js';

const packr = new Packr({ useRecords: false, moreTypes: false, variableMapSize: true });
const unpackr = new Unpackr({ useRecords: false, moreTypes: false, mapsAsObjects: true });

/**
 * A copy of `value` without `undefined` fields (msgpackr would write them as an extension type,
 * which decoders refuse); plain objects and arrays are walked, anything else (bytes) kept as is.
 */
function withoutUndefined(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutUndefined);
  if (typeof value !== 'object' || value === null || Object.getPrototypeOf(value) !== Object.prototype) return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) if (v !== undefined) out[k] = withoutUndefined(v);
  return out;
}

export function encodeMessage(message: Message): Buffer {
  return packr.pack(withoutUndefined(message));
}

function isMessageType(t: unknown): t is MessageType {
  return typeof t === 'string' && Object.hasOwn(messageSchemas, t);
}

/**
 * Walks the frame's msgpack structure (without decoding it) and refuses what plain msgpack has no
 * place for here: extension types (fixext 0xd4–0xd8, ext 0xc7–0xc9; msgpackr's records, typed
 * arrays, dates, … are all extensions) and the never-used byte 0xc1. `bin`/`str` payloads are
 * skipped by their length, so tensor bytes are never mistaken for type bytes.
 */
function checkPlainMsgpack(frame: Uint8Array): void {
  const view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  const end = frame.byteLength;
  let pos = 0;
  let items = 1; // values still to read
  const need = (n: number): void => {
    if (pos + n > end) throw new ProtocolError('UNDECODABLE', `frame of ${end} bytes is truncated msgpack`);
  };
  const ext = (what: string): never => {
    throw new ProtocolError('UNDECODABLE', `msgpack extension types are not part of the protocol (${what} at byte ${pos - 1}); send plain msgpack`);
  };
  while (items > 0) {
    // Every declared item needs at least one byte: a huge count in a small frame is truncated.
    if (items > end - pos) throw new ProtocolError('UNDECODABLE', `frame of ${end} bytes is truncated msgpack`);
    const b = frame[pos++];
    items--;
    if (b <= 0x7f || b >= 0xe0 || b === 0xc0 || b === 0xc2 || b === 0xc3) continue; // fixint, nil, bool
    if (b >= 0x80 && b <= 0x8f) { items += 2 * (b & 0x0f); continue; } // fixmap
    if (b >= 0x90 && b <= 0x9f) { items += b & 0x0f; continue; } // fixarray
    if (b >= 0xa0 && b <= 0xbf) { need(b & 0x1f); pos += b & 0x1f; continue; } // fixstr
    let len: number;
    switch (b) {
      case 0xc4: case 0xd9: need(1); len = view.getUint8(pos); pos += 1; need(len); pos += len; continue; // bin8, str8
      case 0xc5: case 0xda: need(2); len = view.getUint16(pos); pos += 2; need(len); pos += len; continue; // bin16, str16
      case 0xc6: case 0xdb: need(4); len = view.getUint32(pos); pos += 4; need(len); pos += len; continue; // bin32, str32
      case 0xcc: case 0xd0: need(1); pos += 1; continue;
      case 0xcd: case 0xd1: need(2); pos += 2; continue;
      case 0xca: case 0xce: case 0xd2: need(4); pos += 4; continue;
      case 0xcb: case 0xcf: case 0xd3: need(8); pos += 8; continue;
      case 0xdc: need(2); items += view.getUint16(pos); pos += 2; continue; // array16
      case 0xdd: need(4); items += view.getUint32(pos); pos += 4; continue; // array32
      case 0xde: need(2); items += 2 * view.getUint16(pos); pos += 2; continue; // map16
      case 0xdf: need(4); items += 2 * view.getUint32(pos); pos += 4; continue; // map32
      case 0xc1: throw new ProtocolError('UNDECODABLE', `byte 0xc1 (never used in msgpack) at byte ${pos - 1}`);
      default: ext(`type byte 0x${b.toString(16)}`); // 0xc7–0xc9, 0xd4–0xd8
    }
  }
  if (pos !== end) throw new ProtocolError('UNDECODABLE', `${end - pos} bytes after the message`);
}

/** The fields of a `gradients` frame that are well-formed enough to name its shard. */
function frameContext(type: string, value: Record<string, unknown>): FrameContext {
  const nat = (v: unknown): number | undefined => (typeof v === 'number' && Number.isInteger(v) && v >= 0 ? v : undefined);
  return { type, step: nat(value.step), version: nat(value.version), shard: nat(value.shard) };
}

export function decodeMessage(frame: Uint8Array): Message {
  let value: unknown;
  checkPlainMsgpack(frame);
  try {
    value = unpackr.unpack(frame);
  } catch (err) {
    throw new ProtocolError('UNDECODABLE', `frame of ${frame.byteLength} bytes is not valid msgpack (${(err as Error).message})`);
  }
  // Only a plain map is a message (msgpackr turns reserved bytes such as 0xc1 into marker objects).
  if (typeof value !== 'object' || value === null || Object.getPrototypeOf(value) !== Object.prototype) {
    const what = Array.isArray(value) ? 'an array' : value === null ? 'nil' : typeof value === 'object' ? 'a non-map value' : typeof value;
    throw new ProtocolError('UNDECODABLE', `frame decodes to ${what}, not a message map`);
  }
  const type = (value as { type?: unknown }).type;
  if (!isMessageType(type)) throw new ProtocolError('UNKNOWN_TYPE', `unknown message type ${JSON.stringify(type) ?? 'undefined'}`);
  const context = frameContext(type, value as Record<string, unknown>);
  const loss = (value as { loss?: unknown }).loss;
  if (type === 'gradients' && typeof loss === 'number' && !Number.isFinite(loss)) {
    throw new ProtocolError('NON_FINITE', `gradients: loss is ${loss}`, context);
  }
  const parsed = messageSchemas[type].safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new ProtocolError('BAD_MESSAGE', `${type}: field ${issue.path.join('.') || '(root)'}: ${issue.message}`, context);
  }
  return parsed.data as Message;
}

/** The bytes of a received WebSocket message, whichever form `ws` delivered it in. */
export function frameBytes(data: Buffer | ArrayBuffer | Buffer[]): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}
