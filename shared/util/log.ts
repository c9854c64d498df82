/**
 * The logging seam: library code logs through this interface (never console.log), and the CLI
 * decides where lines go and how they look.
 */

export type LogFields = Readonly<Record<string, unknown>>;

export interface Logger {
  debug(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
}

export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };

/** A logger that adds `fields()` (evaluated per line, so they may change) to every line. */
export function withFields(log: Logger, fields: () => LogFields): Logger {
  return {
    debug: (m, f) => log.debug(m, { ...fields(), ...f }),
    info: (m, f) => log.info(m, { ...fields(), ...f }),
    warn: (m, f) => log.warn(m, { ...fields(), ...f }),
    error: (m, f) => log.error(m, { ...fields(), ...f }),
  };
}
