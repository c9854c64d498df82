/**
 * The CLI's logger: one line per event on stderr — `role level message key=value…` on a terminal,
 * one JSON object per line otherwise (for log collectors). Library code only sees `Logger`.
 */

import type { LogFields, Logger } from '../shared/util/log.js';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };
export const LOG_LEVELS = Object.keys(ORDER) as LogLevel[];

export interface CliLoggerOptions {
  readonly role: string;
  readonly level: LogLevel;
  readonly json: boolean;
  readonly write?: (line: string) => void;
  /** Fields on every line (e.g. workerId). */
  readonly base?: LogFields;
}

function formatValue(v: unknown): string {
  if (typeof v === 'string') return /\s/.test(v) ? JSON.stringify(v) : v;
  return JSON.stringify(v);
}

/** One event as the terminal shows it: `role LEVEL message key=value…` (no level word for info). */
export function formatTextLine(role: string, level: string, message: string, fields: LogFields = {}): string {
  const kv = Object.entries(fields).map(([k, v]) => `${k}=${formatValue(v)}`).join(' ');
  return `${role} ${level === 'info' ? '' : `${level.toUpperCase()} `}${message}${kv ? ` ${kv}` : ''}`;
}

/**
 * A JSON log line (as written off a terminal) in the terminal's text form, under `role` in
 * place of its own role and without the fields in `drop`; null when the line is not a JSON event.
 */
export function jsonLineToText(line: string, role: string, drop: readonly string[] = []): string | null {
  let event: unknown;
  try {
    event = JSON.parse(line);
  } catch {
    return null;
  }
  if (event === null || typeof event !== 'object' || Array.isArray(event)) return null;
  const { time: _time, level, role: _role, msg, ...fields } = event as Record<string, unknown>;
  if (typeof level !== 'string' || typeof msg !== 'string') return null;
  for (const k of drop) delete fields[k];
  return formatTextLine(role, level, msg, fields);
}

export function createCliLogger(options: CliLoggerOptions): Logger {
  const write = options.write ?? ((line: string) => void process.stderr.write(`${line}\n`));
  const emit = (level: LogLevel, message: string, fields?: LogFields): void => {
    if (ORDER[level] < ORDER[options.level]) return;
    const all = { ...options.base, ...fields };
    if (options.json) write(JSON.stringify({ time: new Date().toISOString(), level, role: options.role, msg: message, ...all }));
    else write(formatTextLine(options.role, level, message, all));
  };
  return {
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
  };
}
