/*
 * queue-control — `mxscreen queue flush|delete|hold|release|requeue` (Postfix postqueue -f,
 * postqueue -s, postsuper -d, -h, -H, -r), safe while mxscreen runs.
 *
 * Decides: how a command reaches the queue. When a live mxscreen owns the queue
 * (`control/pid` names a running process), the command is a request file written to
 * `control/<name>.req` (tmp + rename); the queue manager, which watches control/ and
 * also looks at every queue run, applies it and answers in `control/<name>.done`. So only
 * one process ever moves a file out of active/, and a message being delivered is
 * changed only after its attempt (delete aborts it): no half-moved files, no double
 * delivery. With no live owner the command is applied directly. Each command on a
 * message outside active/ is one rename (or unlink), atomic; a file that moves meanwhile
 * is looked up again (bounded). What each command does to each queue: `applyControl`.
 * corrupt/ is searched by id only, never by ALL (postsuper's default queues): delete
 * removes a corrupt file; requeue puts it back only when its body is complete, its END
 * record restored first (corrupt-repair.ts), and otherwise refuses and leaves it there.
 * Leaves to others: the queue manager's side (queue-manager.ts), the command line (cli.ts).
 * Bugs: a stale control/pid whose number a new unrelated process took reads as live (the
 * command then times out); mxscreen starting during a direct command can race with it;
 * delete does not notify the sender (as postsuper -d).
 */
import { mkdir, readdir, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { hasErrno, MxError } from '../errors.js';
import { CONTROL_DIRECTORY, Spool, type QueueName } from './spool.js';
import { systemClock } from '../clock.js';
import { createLogger } from '../ops/log.js';
import { Metrics } from '../ops/metrics.js';
import { isQueueId } from './queue-id.js';
import { describeCondition, isRepairable } from './corrupt-repair.js';
import { queuedDomains } from './deferred-schedule.js';

export const CONTROL_COMMANDS = ['flush', 'delete', 'hold', 'release', 'requeue'] as const;
export type ControlCommand = (typeof CONTROL_COMMANDS)[number];

export interface ControlRequest {
  readonly command: ControlCommand;
  /** A queue id or `ALL`; for flush a domain or empty (everything). */
  readonly target: string;
}

export interface ControlReply {
  /** False when nothing matched (unknown id, not on hold) or the command failed. */
  readonly ok: boolean;
  /** Messages the command applied to. */
  readonly count: number;
  /** One line for the operator, Postfix style (`postsuper: ID: placed on hold`). */
  readonly text: string;
}

/** The running queue manager's part in a command: it owns active/ and the schedule. */
export interface ControlOwner {
  /**
   * Applies `command` to message `id` when the owner holds it in active/; false when it
   * does not; `moved` when its attempt was ending: it has left active/ now, look again.
   */
  claimActive(command: Exclude<ControlCommand, 'flush'>, id: string): Promise<boolean | 'moved'>;
  /** Tells the owner that control moved `id` (to a queue, or removed it), so its schedule follows. */
  moved(id: string, to: QueueName | 'removed'): void;
  /** Schedules deferred mail (of `domain`, or all) for delivery now; resolves the count. */
  flush(domain?: string): Promise<number>;
}

/** Where a command may find a message, in lookup order; corrupt/ only by its id (as postsuper: ALL leaves it alone). */
const SEARCHED: readonly QueueName[] = ['incoming', 'deferred', 'hold', 'active', 'corrupt'];
/** Where `ALL` looks (postsuper's default queues). */
const ALL_QUEUES: readonly QueueName[] = ['incoming', 'deferred', 'hold', 'active'];
/** Name of the owner's pid file in control/. */
export const PID_FILE = 'pid';
/** Lookups of a message that keeps moving before a command gives up. */
const LOCATE_ATTEMPTS = 3;

/**
 * Applies one command to the queue (the owner's side, or directly when no mxscreen runs).
 * Never throws for a missing message (ok false); throws MxError ERR_QUEUE_IO on I/O errors.
 */
export async function applyControl(spool: Spool, request: ControlRequest, owner?: ControlOwner): Promise<ControlReply> {
  const { command, target } = request;
  if (command === 'flush') return flushQueue(spool, target, owner);
  const ids = target.toUpperCase() === 'ALL' ? await allIds(spool) : [target.toUpperCase()];
  let count = 0;
  const lines: string[] = [];
  for (const id of ids) {
    if (!isQueueId(id)) {
      lines.push(`${target}: not a queue id`);
      continue;
    }
    const outcome = await applyToMessage(spool, command, id, owner);
    if (outcome.done) count += 1;
    lines.push(`${id}: ${outcome.done ? PAST_TENSE[command] + (outcome.note ? ` (${outcome.note})` : '') : outcome.why}`);
  }
  const text = target.toUpperCase() === 'ALL' ? `${PAST_TENSE[command]}: ${count} message${count === 1 ? '' : 's'}` : lines.join('\n');
  return { ok: count > 0 || target.toUpperCase() === 'ALL', count, text };
}

const PAST_TENSE: Readonly<Record<ControlCommand, string>> = {
  flush: 'flushed',
  delete: 'removed',
  hold: 'placed on hold',
  release: 'released from hold',
  requeue: 'requeued',
};

/** What a command did to one message: done (with a remark for the operator), or why not. */
type MessageOutcome = { readonly done: true; readonly note?: string } | { readonly done: false; readonly why: string };

const NO_SUCH_MESSAGE: MessageOutcome = { done: false, why: 'no such message' };

async function applyToMessage(spool: Spool, command: Exclude<ControlCommand, 'flush'>, id: string, owner: ControlOwner | undefined): Promise<MessageOutcome> {
  // Bounded: a file that moves between lookup and rename is looked up again a few times.
  for (let attempt = 0; attempt < LOCATE_ATTEMPTS; attempt += 1) {
    const from = await locate(spool, id);
    if (!from) return NO_SUCH_MESSAGE;
    if (from === 'active' && owner) {
      const claimed = await owner.claimActive(command, id);
      if (claimed === 'moved') continue;
      return claimed ? { done: true } : notApplied(command);
    }
    const to = destination(command, from);
    if (to === undefined) return from === 'corrupt' ? { done: false, why: 'corrupt queue file: only requeue or delete apply' } : notApplied(command);
    let note: string | undefined;
    try {
      if (to === 'removed') await spool.remove(from, id);
      else if (from === 'corrupt') {
        const condition = await spool.requeueCorrupt(id);
        if (!isRepairable(condition)) return { done: false, why: `not requeued, left in corrupt/: ${describeCondition(condition)}` };
        note = condition.kind === 'no-end-record' ? 'repaired: end record restored' : 'from corrupt/';
      } else if (to !== from) await spool.move(id, from, to);
    } catch (error) {
      if (hasErrno(error, 'ENOENT')) continue;
      throw error;
    }
    owner?.moved(id, to);
    return { done: true, ...(note ? { note } : {}) };
  }
  return NO_SUCH_MESSAGE;
}

function notApplied(command: Exclude<ControlCommand, 'flush'>): MessageOutcome {
  return command === 'release' ? { done: false, why: 'not on hold' } : NO_SUCH_MESSAGE;
}

/**
 * Where `command` sends a message found in `from` (undefined: the command does not apply).
 * A corrupt file may only be deleted or requeued (requeue repairs it first, or refuses).
 */
function destination(command: Exclude<ControlCommand, 'flush'>, from: QueueName): QueueName | 'removed' | undefined {
  switch (command) {
    case 'delete':
      return 'removed';
    case 'hold':
      return from === 'corrupt' ? undefined : 'hold';
    case 'release':
      return from === 'hold' ? 'deferred' : undefined;
    case 'requeue':
      return 'incoming';
    default: {
      const never: never = command;
      throw new Error(`unhandled control command ${String(never)}`);
    }
  }
}

async function flushQueue(spool: Spool, domain: string, owner: ControlOwner | undefined): Promise<ControlReply> {
  const site = domain.trim().toLowerCase();
  if (owner) {
    const count = await owner.flush(site || undefined);
    return { ok: true, count, text: `flush${site ? ` ${site}` : ''}: ${count} message${count === 1 ? '' : 's'} scheduled` };
  }
  // Nobody delivers now: requeue to incoming/, which the queue manager takes first at start.
  let count = 0;
  for (const id of await spool.list('deferred')) {
    if (site) {
      const schedule = await spool.readSchedule(id);
      const domains = schedule?.domains ?? (await queuedDomains(spool, id));
      if (!domains.some((d) => matchesSite(d, site))) continue;
    }
    if ((await applyToMessage(spool, 'requeue', id, undefined)).done) count += 1;
  }
  return { ok: true, count, text: `flush${site ? ` ${site}` : ''}: ${count} message${count === 1 ? '' : 's'} requeued; mxscreen is not running, they go out when it starts` };
}

/** ETRN/flush site match (RFC 1985): `example.com` itself, `@example.com` also its subdomains. */
export function matchesSite(domain: string, site: string): boolean {
  if (site.startsWith('@')) {
    const base = site.slice(1);
    return domain === base || domain.endsWith(`.${base}`);
  }
  return domain === site;
}

async function locate(spool: Spool, id: string): Promise<QueueName | undefined> {
  for (const queue of SEARCHED) {
    try {
      await stat(spool.path(queue, id));
      return queue;
    } catch {
      // not in this queue
    }
  }
  return undefined;
}

async function allIds(spool: Spool): Promise<string[]> {
  const ids = new Set<string>();
  for (const queue of ALL_QUEUES) for (const id of await spool.list(queue)) ids.add(id);
  return [...ids].sort();
}


// --- the command line's side ---

/**
 * What `mxscreen queue flush|delete|hold|release|requeue` runs: through the live owner
 * of `directory` when there is one (waiting up to `timeoutMs` ms for its answer), else
 * directly on the files. Throws MxError ERR_QUEUE_IO (no answer, I/O error).
 */
export async function runQueueControl(directory: string, request: ControlRequest, timeoutMs = 10_000): Promise<ControlReply> {
  if (await queueOwnerRunning(directory)) return submitControl(directory, request, timeoutMs);
  const spool = await Spool.open(directory, { log: createLogger({ level: 'silent' }), metrics: new Metrics(), clock: systemClock });
  return applyControl(spool, request);
}

/** True when `control/pid` names a live process (the owner of the queue). */
export async function queueOwnerRunning(directory: string): Promise<boolean> {
  let pid: number;
  try {
    pid = Number((await readFile(join(directory, CONTROL_DIRECTORY, PID_FILE), 'utf8')).trim());
  } catch {
    return false;
  }
  if (!Number.isSafeInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Sends `request` to the running mxscreen that owns `directory` and waits up to
 * `timeoutMs` for its answer (polling every 20 ms). Throws MxError ERR_QUEUE_IO when no
 * answer comes in time (the request file is withdrawn).
 */
export async function submitControl(directory: string, request: ControlRequest, timeoutMs: number): Promise<ControlReply> {
  const controlDirectory = join(directory, CONTROL_DIRECTORY);
  await mkdir(controlDirectory, { recursive: true, mode: 0o700 });
  const name = `${Date.now().toString(36)}-${randomBytes(6).toString('hex')}`;
  const temporary = join(controlDirectory, `${name}.tmp`);
  await writeFile(temporary, JSON.stringify(request), { mode: 0o600 });
  await rename(temporary, join(controlDirectory, `${name}.req`));
  const done = join(controlDirectory, `${name}.done`);
  const deadline = Date.now() + timeoutMs;
  // Bounded by the deadline.
  while (Date.now() < deadline) {
    try {
      const reply = JSON.parse(await readFile(done, 'utf8')) as ControlReply;
      await unlink(done).catch(() => undefined);
      return reply;
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
  await unlink(join(controlDirectory, `${name}.req`)).catch(() => undefined);
  throw new MxError('ERR_QUEUE_IO', `mxscreen did not answer the ${request.command} request within ${timeoutMs} ms`);
}

/** The owner's side: request files waiting in control/ (oldest first). */
export async function pendingControlRequests(directory: string): Promise<string[]> {
  const names = await readdir(join(directory, CONTROL_DIRECTORY)).catch(() => [] as string[]);
  return names.filter((name) => name.endsWith('.req')).sort();
}

/**
 * The owner's side: reads request `name`, applies it with `apply`, writes the answer
 * and removes the request. A malformed request is answered with ok false. Never throws.
 */
export async function answerControlRequest(directory: string, name: string, apply: (request: ControlRequest) => Promise<ControlReply>): Promise<void> {
  const controlDirectory = join(directory, CONTROL_DIRECTORY);
  const path = join(controlDirectory, name);
  let reply: ControlReply;
  try {
    const claimed = `${path}.taken`;
    await rename(path, claimed); // one owner answers each request once
    const request = JSON.parse(await readFile(claimed, 'utf8')) as Partial<ControlRequest>;
    await unlink(claimed).catch(() => undefined);
    if (!request.command || !(CONTROL_COMMANDS as readonly string[]).includes(request.command) || typeof request.target !== 'string') {
      reply = { ok: false, count: 0, text: 'malformed queue control request' };
    } else {
      reply = await apply(request as ControlRequest);
    }
  } catch (error) {
    if (hasErrno(error, 'ENOENT')) return;
    reply = { ok: false, count: 0, text: (error as Error).message };
  }
  const base = name.slice(0, -'.req'.length);
  await writeFile(join(controlDirectory, `${base}.done.tmp`), JSON.stringify(reply)).catch(() => undefined);
  await rename(join(controlDirectory, `${base}.done.tmp`), join(controlDirectory, `${base}.done`)).catch(() => undefined);
}
