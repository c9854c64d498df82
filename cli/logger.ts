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

export function createCliLogger(options: CliLoggerOptions): Logger {
  const write = options.write ?? ((line: string) => void process.stderr.write(`${line}\n`));
  const emit = (level: LogLevel, message: string, fields?: LogFields): void => {
    if (ORDER[level] < ORDER[options.level]) return;
    const all = { ...options.base, ...fields };
    if (options.json) write(JSON.stringify({ time: new Date().toISOString(), level, role: options.role, msg: message, ...all }));
    else {
      const kv = Object.entries(all).map(([k, v]) => `${k}=${formatValue(v)}`).join(' ');
      write(`${options.role} ${level === 'info' ? '' : `${level.toUpperCase()} `}${message}${kv ? ` ${kv}` : ''}`);
    }
  };
  return {
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
  };
}
