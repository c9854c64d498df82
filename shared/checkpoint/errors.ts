/** The error thrown for a malformed or unexpected checkpoint file; the message starts with the file. */

export class CheckpointFormatError extends Error {
  constructor(
    readonly file: string,
    detail: string,
  ) {
    super(`${file}: ${detail}`);
    this.name = 'CheckpointFormatError';
  }
}
