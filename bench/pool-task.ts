/**
 * The piscina task of `npm run bench -- --suite pool`: does nothing and returns its input, so a
 * task's time is piscina's own per-task cost (dispatch, the message to the worker, the reply, and
 * the promise settling on the main thread).
 */

export default function emptyTask(input: number): number {
  return input;
}
