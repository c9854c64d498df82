/**
 * The messages of meshgrad's coordinator–worker protocol (see docs/protocol.md), as zod schemas
 * that validate every decoded frame, and the TypeScript types derived from them.
 *
 * A session: worker → join; coordinator → welcome (model, hyper-parameters, parameters); then per
 * step: coordinator → assign; worker → gradients; coordinator → params (the new parameters, to
 * every worker). Either side may send heartbeat, error and leave at any time.
 */

import { z } from 'zod';
import { ERROR_CODES } from './errors.js';
import { COMPRESSION_MODES } from './wire-compressed.js';
import { wireTensorSchema } from './wire-tensor.js';

/**
 * 2: gradient and parameter buckets (`gradbucket`, `bucket` fields, `welcome.buckets`);
 * compressed tensors (float16, bfloat16, int8 + scale), `welcome.compression`, `params.delta`.
 */
export const PROTOCOL_VERSION = 2;

const int = z.number().int();
const nonNegInt = int.nonnegative();


export const joinSchema = z.object({
  type: z.literal('join'),
  protocol: int,
  name: z.string().max(200).optional(),
  capabilities: z.object({
    threads: int.positive(),
    device: z.enum(['cpu', 'webgpu']),
    /** The GPU adapter's name (webgpu workers), for logs, metrics and the dashboard. */
    adapter: z.string().max(256).optional(),
    /**
     * The model this worker can build from code (the name its --module file's defineModel gives):
     * a run whose model is a module spec takes only workers naming it; absent: none.
     */
    module: z.string().max(200).optional(),
    /**
     * Datasets this worker can load itself: bundled names, and `KIND:PATH` user datasets it was
     * given (`worker --dataset`, the path on its own machine); an empty list asks for samples on
     * the wire. The coordinator matches its --dataset string exactly.
     */
    datasets: z.array(z.string().max(4096)),
  }),
});

export const welcomeSchema = z.object({
  type: z.literal('welcome'),
  workerId: z.string(),
  runId: z.string(),
  /** A model spec (validated again by the worker's model builder). */
  model: z.unknown(),
  dataset: z.string(),
  /** The dataset's classes (the vocabulary size for text): sizes a model spec may leave out. */
  numClasses: int.positive(),
  /** When true, assignments carry the samples themselves. */
  sendSamples: z.boolean(),
  /** How to open `dataset` (csv:/tsv: --label), so that a worker reading it itself reads the same samples. */
  datasetOptions: z.object({ labelColumn: z.string().max(4096).optional() }).optional(),
  /**
   * When the worker reads its samples itself (sendSamples false): the coordinator's training
   * split's fingerprint (shared/data/fingerprint.ts); a worker whose copy differs refuses to compute.
   */
  datasetCheck: z
    .object({
      size: int.positive(),
      sampleShape: z.array(int.positive()).max(8),
      numClasses: int.positive(),
      digest: z.string().regex(/^[0-9a-f]{64}$/),
    })
    .optional(),
  seed: int,
  labelSmoothing: z.number().min(0).lt(1),
  /**
   * The loss (absent: cross-entropy with `labelSmoothing`): mse or huber train on regression
   * targets (assignments' `samples.t`, or the worker's own copy of the data opened for regression).
   */
  objective: z
    .object({
      loss: z.enum(['cross-entropy', 'mse', 'huber']),
      labelSmoothing: z.number().min(0).lt(1).optional(),
      huberDelta: z.number().positive().finite().optional(),
    })
    .optional(),
  heartbeatMs: int.positive(),
  /**
   * The run's --compress mode: the dtype gradients may use (float32 is always allowed), and
   * whether `params` messages carry deltas in it. `params` here is always full float32.
   */
  compression: z.enum(COMPRESSION_MODES),
  version: nonNegInt,
  params: z.array(wireTensorSchema),
  /** The parameters' names (PyTorch style, e.g. `0.weight`), in the order of `params` (optional: added within version 1). */
  paramNames: z.array(z.string()).optional(),
  /** The model's buffers (BatchNorm running statistics), in the model's buffer order. */
  buffers: z.array(wireTensorSchema).optional(),
  /** The buffers' names, in the order of `buffers` (optional: added within version 1). */
  bufferNames: z.array(z.string()).optional(),
  /**
   * Gradient buckets: the index of each bucket's first parameter, ascending from 0 (bucket k is
   * parameters [buckets[k], buckets[k+1])). Absent or one bucket: gradients and parameters go as
   * one message each. With more, a worker sends each bucket's gradients as soon as backward has
   * finished them (`gradbucket`), the last one in `gradients`; the coordinator sends each
   * bucket's new parameters (`params` with `bucket`) as soon as it has stepped it.
   */
  buckets: z.array(nonNegInt).optional(),
  /**
   * Local updates (--sync-every H > 1): each assignment is H inner steps on the worker's own
   * inner optimizer (these settings; its state kept across assignments, reset by a welcome), and
   * the worker answers with its parameter change instead of a gradient.
   */
  local: z
    .object({
      syncEvery: int.min(2),
      optimizer: z.enum(['sgd', 'adam', 'adamw']),
      lr: z.number().nonnegative(),
      momentum: z.number().min(0).optional(),
      nesterov: z.boolean().optional(),
      weightDecay: z.number().min(0).optional(),
    })
    .optional(),
});

export const assignSchema = z.object({
  type: z.literal('assign'),
  step: nonNegInt,
  version: nonNegInt,
  /** Identifies this piece of the step's batch; the gradients for it echo the same number. */
  shard: nonNegInt,
  /** Samples in the whole step (all shards): the worker divides its summed loss by this. */
  batchSize: int.positive(),
  indices: wireTensorSchema,
  /** The shard's samples: features x, labels y, and for regression the float32 targets t ([n, targets]). */
  samples: z.object({ x: wireTensorSchema, y: wireTensorSchema, t: wireTensorSchema.optional() }).optional(),
  /**
   * With local updates: the inner learning rate of each inner step (their number: 1 to H). The
   * worker cuts its samples into that many contiguous pieces, takes one inner step on each, and
   * sends (θ_start − θ_end) · samples / batchSize in `gradients.grads`.
   */
  local: z.object({ lrs: z.array(z.number().nonnegative()).min(1).max(1024) }).optional(),
});

export const gradientsSchema = z.object({
  type: z.literal('gradients'),
  step: nonNegInt,
  version: nonNegInt,
  shard: nonNegInt,
  samples: int.positive(),
  loss: z.number(),
  correct: nonNegInt,
  computeMs: z.number().nonnegative(),
  grads: z.array(wireTensorSchema),
  /** With buckets: `grads` holds this bucket's gradients only (the last bucket backward finished). */
  bucket: nonNegInt.optional(),
  /** The worker's buffers after its forward pass (averaged by the coordinator, weighted by samples). */
  buffers: z.array(wireTensorSchema).optional(),
});

/** One bucket's gradients of a shard, sent while backward goes on; `gradients` ends the shard. */
export const gradBucketSchema = z.object({
  type: z.literal('gradbucket'),
  step: nonNegInt,
  version: nonNegInt,
  shard: nonNegInt,
  bucket: nonNegInt,
  grads: z.array(wireTensorSchema),
});

export const paramsSchema = z.object({
  type: z.literal('params'),
  version: nonNegInt,
  /**
   * true: `params` are updates to add to the parameters of version `version - 1` (in the run's
   * compressed dtype); absent or false: the full parameters. Buffers are always full float32.
   */
  delta: z.boolean().optional(),
  params: z.array(wireTensorSchema),
  /** With buckets: `params` holds this bucket's parameters of `version`; the version is complete once every bucket has come. */
  bucket: nonNegInt.optional(),
  buffers: z.array(wireTensorSchema).optional(),
});

export const heartbeatSchema = z.object({ type: z.literal('heartbeat'), time: z.number() });

export const errorSchema = z.object({
  type: z.literal('error'),
  code: z.enum(ERROR_CODES),
  message: z.string(),
  step: nonNegInt.optional(),
});

export const leaveSchema = z.object({
  type: z.literal('leave'),
  /** 'finished': the run is over; 'shutdown': the sender is stopping (a worker may rejoin later). */
  reason: z.enum(['finished', 'shutdown', 'refused']),
  message: z.string().optional(),
});

export const messageSchemas = {
  join: joinSchema,
  welcome: welcomeSchema,
  assign: assignSchema,
  gradients: gradientsSchema,
  gradbucket: gradBucketSchema,
  params: paramsSchema,
  heartbeat: heartbeatSchema,
  error: errorSchema,
  leave: leaveSchema,
} as const;

export type MessageType = keyof typeof messageSchemas;
export type JoinMessage = z.infer<typeof joinSchema>;
export type WelcomeMessage = z.infer<typeof welcomeSchema>;
export type AssignMessage = z.infer<typeof assignSchema>;
export type GradientsMessage = z.infer<typeof gradientsSchema>;
export type GradBucketMessage = z.infer<typeof gradBucketSchema>;
export type ParamsMessage = z.infer<typeof paramsSchema>;
export type HeartbeatMessage = z.infer<typeof heartbeatSchema>;
export type ErrorMessage = z.infer<typeof errorSchema>;
export type LeaveMessage = z.infer<typeof leaveSchema>;
export type Message = JoinMessage | WelcomeMessage | AssignMessage | GradientsMessage | GradBucketMessage | ParamsMessage | HeartbeatMessage | ErrorMessage | LeaveMessage;
