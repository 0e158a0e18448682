/*
 * smtpd-client-limits — anvil(8) for the smtpd stage: how many connections one client may
 * have open in smtpd at once, and how many it may make per anvil_rate_time_unit.
 *
 * Decides (smtpd(8) smtpd_proto(), anvil(8), postconf(5)): when a screened connection reaches
 * the smtpd stage, a client in smtpd_client_event_limit_exceptions (old name
 * smtpd_client_connection_limit_exceptions; default $mynetworks) is neither counted nor
 * limited; any other client is counted (its open connections, and its connections in the
 * current anvil_rate_time_unit window, this one included) and refused, instead of the 220
 * greeting, with `421 4.7.0 $myhostname Error: too many connections from ADDR` when the
 * count exceeds smtpd_client_connection_count_limit (checked first) or the rate exceeds
 * smtpd_client_connection_rate_limit. Each refusal is logged at warn level as smtpd does:
 * `Connection concurrency limit exceeded: N from unknown[ADDR] for service smtpd` or
 * `Connection rate limit exceeded: N from unknown[ADDR] for service smtpd` (anvil counts a
 * refused connection in the rate, not in the count once it is closed).
 * Leaves to others: the screen stage's own per-client limit (screen/connection-limits.ts),
 * running the SMTP session of an admitted connection (smtpd.ts), the wiring (main.ts).
 * Counts are per process: with mxscreen_workers > 1 every connection of one address
 * reaches one worker (workers/client-hash.ts), so they stay exact.
 * Bugs: exceptions match the address only (there is no reverse lookup at connect, so host names
 * in the list never match; Postfix's name is `unknown` in the log for the same reason).
 */
import type { Socket } from 'node:net';
import type { Clock } from '../clock.js';
import type { Config, MatchList } from '../config/value.js';
import { formatReply, type SmtpReply } from '../errors.js';
import { formatClient, type Logger } from '../ops/log.js';
import type { Metrics } from '../ops/metrics.js';
import type { ScreenVerdict } from '../screen-verdict.js';
import { matchNetwork } from '../tables/match-list.js';
import { countReply } from './smtp-reply-adapter.js';

/**
 * The service name in smtpd's log lines: the master.cf name of the smtpd service behind
 * postscreen (POSTSCREEN_README: `smtpd pass - - n - - smtpd`), which anvil(8) counts by.
 */
export const SMTPD_SERVICE = 'smtpd';

/** After the 421 has been written, how long the client gets to hang up before the socket is destroyed, ms. */
const HANGUP_GRACE_MS = 1_000;

export interface SmtpdClientLimitSettings {
  /** smtpd_client_connection_count_limit: open connections per client; 0 = none. */
  readonly connectionCountLimit: number;
  /** smtpd_client_connection_rate_limit: connections per client per time unit; 0 = none. */
  readonly connectionRateLimit: number;
  /** anvil_rate_time_unit, ms. */
  readonly rateTimeUnitMs: number;
  /** smtpd_client_event_limit_exceptions: clients that are neither counted nor limited. */
  readonly exceptions: MatchList;
  /** myhostname, in the 421 reply. */
  readonly myhostname: string;
}

/** Reads the parameters above from `config` (defaults: postconf(5)). */
export function smtpdClientLimitSettingsFromConfig(config: Config): SmtpdClientLimitSettings {
  return {
    connectionCountLimit: config.get('smtpd_client_connection_count_limit'),
    connectionRateLimit: config.get('smtpd_client_connection_rate_limit'),
    rateTimeUnitMs: config.get('anvil_rate_time_unit'),
    exceptions: config.get('smtpd_client_event_limit_exceptions'),
    myhostname: config.get('myhostname'),
  };
}

/** Which limit refused a connection, the count anvil reported, and the reply. */
export interface ClientLimitRefusal {
  readonly limit: 'concurrency' | 'rate';
  /** The client's open connections (concurrency) or connections in this time unit (rate), this one included. */
  readonly count: number;
  readonly reply: SmtpReply;
}

/** An admitted connection: release() when it closes (idempotent). */
export interface ClientLimitSlot {
  release(): void;
}

/** The smtpd stage's anvil. One per process; settings change on reload, counts stay. */
export class SmtpdClientLimits {
  #settings: SmtpdClientLimitSettings;
  readonly #deps: { readonly clock: Clock; readonly log: Logger; readonly metrics: Metrics };
  /** Open smtpd connections per client address (exempt clients are not in it). */
  readonly #open = new Map<string, number>();
  /** anvil's per-client rate window: start (ms) and connections counted since. */
  readonly #rate = new Map<string, { start: number; count: number }>();
  #lastRateSweep = 0;

  constructor(settings: SmtpdClientLimitSettings, deps: { readonly clock: Clock; readonly log: Logger; readonly metrics: Metrics }) {
    this.#settings = settings;
    this.#deps = deps;
  }

  setSettings(settings: SmtpdClientLimitSettings): void {
    this.#settings = settings;
  }

  /** Open connections of `address` that count against the limit. */
  openConnections(address: string): number {
    return this.#open.get(address) ?? 0;
  }

  /**
   * Counts a connection of `address` and admits or refuses it (smtpd.c: anvil connect,
   * then `count > limit`, then `rate > limit`). A refused connection is not left counted.
   */
  admit(address: string): ClientLimitSlot | ClientLimitRefusal {
    const settings = this.#settings;
    if (matchNetwork(settings.exceptions, address)) return { release: () => undefined };
    const count = (this.#open.get(address) ?? 0) + 1;
    const rate = settings.connectionRateLimit > 0 ? this.#countRate(address) : 0;
    let limit: ClientLimitRefusal['limit'] | undefined;
    if (settings.connectionCountLimit > 0 && count > settings.connectionCountLimit) limit = 'concurrency';
    else if (settings.connectionRateLimit > 0 && rate > settings.connectionRateLimit) limit = 'rate';
    if (limit !== undefined) {
      return {
        limit,
        count: limit === 'concurrency' ? count : rate,
        reply: { code: 421, enhanced: '4.7.0', text: `${settings.myhostname} Error: too many connections from ${address}` },
      };
    }
    this.#open.set(address, count);
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        const left = (this.#open.get(address) ?? 1) - 1;
        if (left > 0) this.#open.set(address, left);
        else this.#open.delete(address);
      },
    };
  }

  /**
   * The gate in front of the smtpd stage: admits the screened `socket` and calls `next()`
   * (which runs the session), releasing the slot when the socket closes; or logs the
   * refusal, answers the 421 and closes the socket. Never throws.
   */
  gate(socket: Socket, verdict: ScreenVerdict, next: () => void): void {
    const address = verdict.client.address;
    const admitted = this.admit(address);
    if (!('limit' in admitted)) {
      socket.once('close', () => admitted.release());
      next();
      return;
    }
    const log = this.#deps.log.child({ session: verdict.sessionId, client: formatClient(address, verdict.client.port) });
    const event = admitted.limit === 'concurrency' ? 'Connection concurrency limit exceeded' : 'Connection rate limit exceeded';
    log.warn({ event, count: admitted.count, service: SMTPD_SERVICE }, `${event}: ${admitted.count} from unknown[${address}] for service ${SMTPD_SERVICE}`);
    countReply(this.#deps.metrics, admitted.reply.code);
    socket.on('error', () => socket.destroy());
    if (socket.destroyed) return;
    socket.end(`${formatReply(admitted.reply)}\r\n`, () => socket.destroy());
    socket.resume(); // read (and drop) what the client sends, so its FIN is seen
    const timer = this.#deps.clock.setTimer(HANGUP_GRACE_MS, () => socket.destroy());
    socket.once('close', () => timer.cancel());
  }

  /** anvil(8): counts this connection in the client's window and returns the window's count. */
  #countRate(address: string): number {
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
    return window.count;
  }
}
