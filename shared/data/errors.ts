/**
 * The error raised when a data file exists but its contents are not what meshgrad expects
 * (bad IDX header, truncated data, corrupt gzip, inconsistent image/label files).
 */

export class DataFormatError extends Error {
  /** The file at fault. */
  readonly file: string;

  constructor(file: string, problem: string, options?: { cause?: unknown }) {
    super(`${file}: ${problem}`, options);
    this.name = 'DataFormatError';
    this.file = file;
  }
}
