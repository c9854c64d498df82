/**
 * Frames ⇄ messages. Plain msgpack (no msgpackr records or extensions), so any msgpack library can
 * speak the protocol. Decoding never throws anything but ProtocolError, with a stable code.
 */

import { Packr, Unpackr } from 'msgpackr';
import { ProtocolError } from './errors.js';
import { messageSchemas, type Message, type MessageType } from './messages.js';

const packr = new Packr({ useRecords: false, moreTypes: false, variableMapSize: true });
const unpackr = new Unpackr({ useRecords: false, moreTypes: false, mapsAsObjects: true });

export function encodeMessage(message: Message): Buffer {
  return packr.pack(message);
}

function isMessageType(t: unknown): t is MessageType {
  return typeof t === 'string' && Object.hasOwn(messageSchemas, t);
}

export function decodeMessage(frame: Uint8Array): Message {
  let value: unknown;
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
  const parsed = messageSchemas[type].safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new ProtocolError('BAD_MESSAGE', `${type}: field ${issue.path.join('.') || '(root)'}: ${issue.message}`);
  }
  return parsed.data as Message;
}

/** The bytes of a received WebSocket message, whichever form `ws` delivered it in. */
export function frameBytes(data: Buffer | ArrayBuffer | Buffer[]): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}
