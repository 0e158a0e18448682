/*
 * connection-limits — who may take a connection slot in the screen stage: postscreen's
 * queue limits, its per-client count limit, and stress mode.
 *
 * Decides (postscreen(8), postscreen.c, postconf(5)): refuse a new connection with 421 4.3.2
 * when postscreen_pre_queue_limit connections are being screened; with `421 4.7.0 Error: too
 * many connections` when the client already has postscreen_client_connection_count_limit
 * connections in the screen stage (postscreen.c `client_info->concurrency`: a connection
 * handed to smtpd no longer counts; mynetworks is not exempt, as in postscreen); refuse a
 * handover with 421 4.3.2 at postscreen_post_queue_limit open sessions. Stress mode: on at
 * 90% of the pre-queue limit, off at 70% (postscreen.c: `.9 * limit` and `.7 * limit`
 * truncated to whole connections); greet wait and command time limit then take the fixed
 * values of Postfix's `${stress?{2}:{6}}s` and `${stress?{10}:{300}}s` defaults.
 * Leaves to others: sending the reply and logging the refusal (screener.ts); the smtpd
 * stage's own count and rate limits (policy/smtpd-client-limits.ts).
 * With mxscreen_workers > 1 the per-client count is exact in its worker (every connection
 * of one address goes to one worker), and the queue limits and stress mode count this
 * worker's connections plus the other workers' as the owner last reported them
 * (setOthers; `onCounts` tells the owner of every change of ours).
 * Bugs: the other workers' counts lag by one IPC message and one event-loop turn, so a
 * burst spread over several workers can pass a queue limit by the connections that
 * arrive elsewhere in that window; each worker logs its own STRESS transitions. The
 * pre-queue limit is checked at connect, before the access list and the cache
 * (postscreen checks it after them, so an allowlisted or PASS OLD client passes a full
 * screen stage).
 */
import type { SmtpReply } from '../errors.js';
import type { Logger } from '../ops/log.js';
import type { Metrics } from '../ops/metrics.js';

/** postscreen_greet_wait in stress mode, ms. */
export const STRESS_GREET_WAIT_MS = 2_000;
/** postscreen_command_time_limit in stress mode, ms. */
export const STRESS_COMMAND_TIME_LIMIT_MS = 10_000;

export interface LimitSettings {
  /** postscreen_client_connection_count_limit: connections of one client in the screen stage; 0 = none. */
  readonly clientConnectionCountLimit: number;
  /** postscreen_pre_queue_limit; 0 = none. */
  readonly preQueueLimit: number;
  /** postscreen_post_queue_limit; 0 = none. */
  readonly postQueueLimit: number;
}

/** Why a connection is refused: the NOQUEUE log reason and the 421 reply. */
export interface LimitRefusal {
  readonly reason: 'all screening ports busy' | 'too many connections' | 'all server ports busy';
  readonly reply: SmtpReply;
}

/** Connections being screened / handed to smtpd and still open. */
export interface ConnectionCounts {
  readonly screening: number;
  readonly smtpd: number;
}

/** A connection holding a slot. */
export interface ConnectionSlot {
  /**
   * Moves the connection from the screen to smtpd (it stops counting against the client's
   * postscreen_client_connection_count_limit); a refusal when the post-queue is full.
   */
  handover(): LimitRefusal | undefined;
  /** Frees the slot (idempotent). */
  release(): void;
}

const SCREENING_BUSY: SmtpReply = { code: 421, enhanced: '4.3.2', text: 'All screening ports are busy' };
const SERVER_BUSY: SmtpReply = { code: 421, enhanced: '4.3.2', text: 'All server ports are busy' };
/** postscreen.c: `421 4.7.0 Error: too many connections` (no address, unlike smtpd's). */
const TOO_MANY: SmtpReply = { code: 421, enhanced: '4.7.0', text: 'Error: too many connections' };

export class ConnectionLimits {
  #settings: LimitSettings;
  readonly #deps: { readonly log: Logger; readonly metrics: Metrics };
  /** Connections of each client in the screen stage. */
  readonly #perClient = new Map<string, number>();
  #screening = 0;
  #smtpd = 0;
  #stress = false;
  /** The other workers' connections (mxscreen_workers > 1), as the owner last reported them. */
  #others: ConnectionCounts = { screening: 0, smtpd: 0 };
  readonly #onCounts: ((counts: ConnectionCounts) => void) | undefined;

  /** `onCounts`: called with this process's counts after each change (a worker reports them to the owner). */
  constructor(settings: LimitSettings, deps: { readonly log: Logger; readonly metrics: Metrics; readonly onCounts?: (counts: ConnectionCounts) => void }) {
    this.#settings = settings;
    this.#deps = deps;
    this.#onCounts = deps.onCounts;
    deps.metrics.stressMode.set(0);
  }

  /** The other workers' connections in each stage (owner's report); the limits count them from now on. */
  setOthers(counts: ConnectionCounts): void {
    this.#others = counts;
    this.#checkStress();
  }

  setSettings(settings: LimitSettings): void {
    this.#settings = settings;
  }

  /** True while in stress mode. */
  get stress(): boolean {
    return this.#stress;
  }

  /** Connections being screened / handed to smtpd and still open. */
  get counts(): ConnectionCounts {
    return { screening: this.#screening, smtpd: this.#smtpd };
  }

  /**
   * Admits a new connection of `address` or refuses it: the screening ports, then the
   * client's connections in the screen stage (postscreen.c: `concurrency > limit` with this
   * one counted).
   */
  admit(address: string): ConnectionSlot | LimitRefusal {
    const settings = this.#settings;
    if (settings.preQueueLimit > 0 && this.#screening + this.#others.screening >= settings.preQueueLimit) {
      return { reason: 'all screening ports busy', reply: SCREENING_BUSY };
    }
    const open = this.#perClient.get(address) ?? 0;
    if (settings.clientConnectionCountLimit > 0 && open >= settings.clientConnectionCountLimit) {
      return { reason: 'too many connections', reply: TOO_MANY };
    }
    this.#perClient.set(address, open + 1);
    this.#screening++;
    this.#changed();
    let stage: 'screen' | 'smtpd' | 'gone' = 'screen';
    return {
      handover: () => {
        if (stage !== 'screen') return undefined;
        if (this.#settings.postQueueLimit > 0 && this.#smtpd + this.#others.smtpd >= this.#settings.postQueueLimit) {
          return { reason: 'all server ports busy', reply: SERVER_BUSY };
        }
        stage = 'smtpd';
        this.#screening--;
        this.#smtpd++;
        this.#leaveScreen(address);
        this.#changed();
        return undefined;
      },
      release: () => {
        if (stage === 'gone') return;
        if (stage === 'screen') {
          this.#screening--;
          this.#leaveScreen(address);
        } else {
          this.#smtpd--;
        }
        stage = 'gone';
        this.#changed();
      },
    };
  }

  /** Our counts changed: stress mode, and the owner's report. */
  #changed(): void {
    this.#checkStress();
    this.#onCounts?.({ screening: this.#screening, smtpd: this.#smtpd });
  }

  /** One connection of `address` left the screen stage (handed over or closed). */
  #leaveScreen(address: string): void {
    const left = (this.#perClient.get(address) ?? 1) - 1;
    if (left > 0) this.#perClient.set(address, left);
    else this.#perClient.delete(address);
  }

  /**
   * Stress mode: on at ≥ ⌊0.9 × limit⌋ connections (at least 1), off at ≤ ⌊0.7 × limit⌋
   * (postscreen.c psc_hiwat_check_queue_length, psc_lowat_check_queue_length).
   */
  #checkStress(): void {
    const limit = this.#settings.preQueueLimit;
    if (limit <= 0) return;
    const count = this.#screening + this.#others.screening;
    if (!this.#stress && count >= Math.max(1, Math.trunc(limit * 0.9))) {
      this.#stress = true;
      this.#deps.metrics.stressMode.set(1);
      this.#deps.log.warn({ event: 'STRESS', stress: true, connections: count }, `entering STRESS mode with ${count} connections`);
    } else if (this.#stress && count <= Math.trunc(limit * 0.7)) {
      this.#stress = false;
      this.#deps.metrics.stressMode.set(0);
      this.#deps.log.info({ event: 'STRESS', stress: false, connections: count }, `leaving STRESS mode with ${count} connections`);
    }
  }
}
