/*
 * worker-messages — what the owner process and its workers say to each other over the
 * child_process IPC channel (mxscreen_workers > 1), as typed values.
 *
 * Decides: the message shapes and the arguments a worker is forked with, and that a
 * connection travels as a `connection` message with the socket as its handle
 * (child.send(message, socket); the owner accepted it with pauseOnConnect, so every byte
 * the client sent is still in the kernel's buffer). A worker's
 * messages of one event-loop turn travel as one `batch` (one write on the channel and one
 * wake-up of the owner, not one per message), in the order they were said, so a commit's
 * `counted` reaches the owner before its `queued`.
 * Leaves to others: the owner's side (worker-pool.ts), the worker's (worker-process.ts).
 */
import type { Registry } from 'prom-client';
import type { QueueName } from '../queue/spool.js';
import type { ConnectionCounts } from '../screen/connection-limits.js';

/** prom-client's getMetricsAsJSON() of one process, as AggregatorRegistry.aggregate() takes it. */
export type MetricsJson = Awaited<ReturnType<Registry['getMetricsAsJSON']>>;

/** What the owner tells a worker at fork (argv[2], JSON). */
export interface WorkerArguments {
  readonly configFile: string;
  /** 0 … mxscreen_workers − 1: the hash bucket this worker serves. */
  readonly index: number;
  /** Queue id slot of this worker (index + 1; the owner is 0) and the number of slots. */
  readonly slot: number;
  readonly slots: number;
  readonly processMetrics: boolean;
}

/** Owner → worker. */
export type OwnerMessage =
  /** The socket comes as the message's handle; `head`: bytes the owner read from it first (base64: a PROXY header and what followed), to be put back in front. */
  | { readonly type: 'connection'; readonly head?: string }
  /** The other workers' connections in each stage (the queue limits and stress mode count them). */
  | { readonly type: 'others'; readonly counts: ConnectionCounts }
  /** Re-read main.cf and the tables (the owner found them good); answer `reloaded`. */
  | { readonly type: 'reload'; readonly id: number }
  /** The answer to `want files`: names of empty files in recycle/ lent to this worker (maybe fewer than asked). */
  | { readonly type: 'files'; readonly names: readonly string[] }
  /** Answer `metrics` with this process's registry. */
  | { readonly type: 'metrics'; readonly id: number }
  /** Stop taking connections, let sessions finish up to `timeoutMs`, then exit. */
  | { readonly type: 'stop'; readonly timeoutMs: number };

/** Worker → owner. */
export type WorkerMessage =
  /** The stages run; connections may come. */
  | { readonly type: 'ready' }
  /** A commit entered (+1) or a failed commit left (-1) `queue` (the owner's queue gauges). */
  | { readonly type: 'counted'; readonly queue: QueueName; readonly delta: 1 | -1 }
  /** Message `id` is durably in incoming/ (or hold/): the owner's queue manager takes it. */
  | { readonly type: 'queued'; readonly id: string }
  /** The worker's spool holds few recycled files: lend it up to `count` (file-pool.ts). */
  | { readonly type: 'want files'; readonly count: number }
  /** An accepted ETRN: the owner's queue manager flushes `domain`. */
  | { readonly type: 'etrn'; readonly domain: string }
  /** This worker's connections in each stage and the connections it has received, after a change. */
  | { readonly type: 'counts'; readonly counts: ConnectionCounts; readonly received: number }
  | { readonly type: 'reloaded'; readonly id: number; readonly ok: boolean }
  | { readonly type: 'metrics'; readonly id: number; readonly metrics: MetricsJson }
  /** Two or more of the above, said in one event-loop turn, in order. */
  | { readonly type: 'batch'; readonly messages: readonly WorkerMessage[] };

/** True when `value` (anything the channel delivered) has a string `type` (the shapes above are trusted between our own processes). */
export function isMessage(value: unknown): value is { readonly type: string } {
  return typeof value === 'object' && value !== null && typeof (value as { type?: unknown }).type === 'string';
}
