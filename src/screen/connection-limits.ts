/*
 * connection-limits — who may take a connection slot: postscreen's queue limits, the
 * per-client count limit, the anvil(8) rate limit, and stress mode.
 *
 * Decides (postscreen(8), postconf(5)): refuse a new connection with 421 4.3.2 when
 * postscreen_pre_queue_limit connections are being screened, 421 4.7.0 beyond
 * postscreen_client_connection_count_limit open connections of the client (screen and
 * smtpd) or smtpd_client_connection_rate_limit per anvil_rate_time_unit (anvil(8) fixed
 * windows; mynetworks exempt); refuse a handover with 421 4.3.2 at
 * postscreen_post_queue_limit open sessions. Stress mode: on at 90% of the pre-queue
 * limit, off at 70%; greet wait and command time limit then take the fixed values of
 * Postfix's `${stress?{2}:{6}}s` and `${stress?{10}:{300}}s` defaults.
 * Leaves to others: sending the reply and logging the refusal (screener.ts).
 * Bugs: counts are per process (README "Design", More than one core).
 */
import type { Clock } from '../clock.js';
import type { SmtpReply } from '../errors.js';
import type { Logger } from '../ops/log.js';
import type { Metrics } from '../ops/metrics.js';

/** postscreen_greet_wait in stress mode, ms. */
export const STRESS_GREET_WAIT_MS = 2_000;
/** postscreen_command_time_limit in stress mode, ms. */
export const STRESS_COMMAND_TIME_LIMIT_MS = 10_000;

export interface LimitSettings {
  /** postscreen_client_connection_count_limit; 0 = none. */
  readonly clientConnectionCountLimit: number;
  /** postscreen_pre_queue_limit; 0 = none. */
  readonly preQueueLimit: number;
  /** postscreen_post_queue_limit; 0 = none. */
  readonly postQueueLimit: number;
  /** smtpd_client_connection_rate_limit; 0 = none. */
  readonly connectionRateLimit: number;
  /** anvil_rate_time_unit, ms. */
  readonly rateTimeUnitMs: number;
}

/** Why a connection is refused: the NOQUEUE log reason and the 421 reply. */
export interface LimitRefusal {
  readonly reason: 'all screening ports busy' | 'too many connections' | 'connection rate limit exceeded' | 'all server ports busy';
  readonly reply: SmtpReply;
}

/** A connection holding a slot. */
export interface ConnectionSlot {
  /** Moves the connection from the screen to smtpd; a refusal when the post-queue is full. */
  handover(): LimitRefusal | undefined;
  /** Frees the slot (idempotent). */
  release(): void;
}

const SCREENING_BUSY: SmtpReply = { code: 421, enhanced: '4.3.2', text: 'All screening ports are busy' };
const SERVER_BUSY: SmtpReply = { code: 421, enhanced: '4.3.2', text: 'All server ports are busy' };

function tooMany(address: string): SmtpReply {
  return { code: 421, enhanced: '4.7.0', text: `Error: too many connections from ${address}` };
}

export class ConnectionLimits {
  #settings: LimitSettings;
  readonly #deps: { readonly clock: Clock; readonly log: Logger; readonly metrics: Metrics };
  readonly #perClient = new Map<string, number>();
  readonly #rate = new Map<string, { start: number; count: number }>();
  #lastRateSweep = 0;
  #screening = 0;
  #smtpd = 0;
  #stress = false;

  constructor(settings: LimitSettings, deps: { readonly clock: Clock; readonly log: Logger; readonly metrics: Metrics }) {
    this.#settings = settings;
    this.#deps = deps;
    deps.metrics.stressMode.set(0);
  }

  setSettings(settings: LimitSettings): void {
    this.#settings = settings;
  }

  /** True while in stress mode. */
  get stress(): boolean {
    return this.#stress;
  }

  /** Connections being screened / handed to smtpd and still open. */
  get counts(): { readonly screening: number; readonly smtpd: number } {
    return { screening: this.#screening, smtpd: this.#smtpd };
  }

  /**
   * Admits a new connection of `address` or refuses it. `rateExempt`: the client is in
   * mynetworks (smtpd_client_event_limit_exceptions). Order as postscreen(8): screening
   * ports, then the client's count, then its rate.
   */
  admit(address: string, rateExempt: boolean): ConnectionSlot | LimitRefusal {
    const settings = this.#settings;
    if (settings.preQueueLimit > 0 && this.#screening >= settings.preQueueLimit) {
      return { reason: 'all screening ports busy', reply: SCREENING_BUSY };
    }
    const open = this.#perClient.get(address) ?? 0;
    if (settings.clientConnectionCountLimit > 0 && open >= settings.clientConnectionCountLimit) {
      return { reason: 'too many connections', reply: tooMany(address) };
    }
    if (settings.connectionRateLimit > 0 && !rateExempt && !this.#rateAllows(address)) {
      return { reason: 'connection rate limit exceeded', reply: tooMany(address) };
    }
    this.#perClient.set(address, open + 1);
    this.#screening++;
    this.#checkStress();
    let stage: 'screen' | 'smtpd' | 'gone' = 'screen';
    return {
      handover: () => {
        if (stage !== 'screen') return undefined;
        if (this.#settings.postQueueLimit > 0 && this.#smtpd >= this.#settings.postQueueLimit) {
          return { reason: 'all server ports busy', reply: SERVER_BUSY };
        }
        stage = 'smtpd';
        this.#screening--;
        this.#smtpd++;
        this.#checkStress();
        return undefined;
      },
      release: () => {
        if (stage === 'gone') return;
        if (stage === 'screen') this.#screening--;
        else this.#smtpd--;
        stage = 'gone';
        const left = (this.#perClient.get(address) ?? 1) - 1;
        if (left > 0) this.#perClient.set(address, left);
        else this.#perClient.delete(address);
        this.#checkStress();
      },
    };
  }

  /** anvil(8): counts this connection in the client's window; false when over the limit. */
  #rateAllows(address: string): boolean {
    const now = this.#deps.clock.now();
    const unit = this.#settings.rateTimeUnitMs;
    if (now - this.#lastRateSweep >= unit) {
      // Bounded memory: windows that ended are forgotten once per time unit.
      this.#lastRateSweep = now;
      for (const [key, window] of this.#rate) if (now - window.start >= unit) this.#rate.delete(key);
    }
    let window = this.#rate.get(address);
    if (window === undefined || now - window.start >= unit) {
      window = { start: now, count: 0 };
      this.#rate.set(address, window);
    }
    window.count++;
    return window.count <= this.#settings.connectionRateLimit;
  }

  /** Stress mode: on at ≥ 90% of the pre-queue limit, off at ≤ 70%. */
  #checkStress(): void {
    const limit = this.#settings.preQueueLimit;
    if (limit <= 0) return;
    const count = this.#screening;
    if (!this.#stress && count >= Math.ceil(limit * 0.9)) {
      this.#stress = true;
      this.#deps.metrics.stressMode.set(1);
      this.#deps.log.warn({ event: 'STRESS', stress: true, connections: count }, `entering STRESS mode with ${count} connections`);
    } else if (this.#stress && count <= Math.floor(limit * 0.7)) {
      this.#stress = false;
      this.#deps.metrics.stressMode.set(0);
      this.#deps.log.info({ event: 'STRESS', stress: false, connections: count }, `leaving STRESS mode with ${count} connections`);
    }
  }
}
