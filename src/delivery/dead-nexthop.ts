/*
 * dead-nexthop — the delivery agent's memory of nexthops it could not reach (qmgr(8): a
 * destination whose delivery is "temporarily suspended").
 *
 * Decides: a nexthop that gave no answer (no target, or every recipient deferred without
 * a connection) is dead until now + minimal_backoff_time, with the reason to repeat in
 * the deferral text; any delivery through it brings it back up. Logs `nexthop dead` once
 * when it goes down and `nexthop up` when it comes back; sets mxscreen_nexthop_up.
 * Leaves to others: when to mark and whether a flush ignores the memory
 * (delivery-agent.ts), each message's own backoff (queue/backoff.ts).
 * Bugs: in memory only: a restart forgets every dead nexthop.
 */
import type { Clock } from '../clock.js';
import type { Logger } from '../ops/log.js';
import type { Metrics } from '../ops/metrics.js';

export class DeadNexthops {
  /** Nexthops that could not be reached, until when they are left alone (ms since the epoch), and why. */
  readonly #dead = new Map<string, { until: number; reason: string }>();
  readonly #deps: { readonly clock: Clock; readonly log: Logger; readonly metrics: Metrics };

  constructor(deps: { readonly clock: Clock; readonly log: Logger; readonly metrics: Metrics }) {
    this.#deps = deps;
  }

  /**
   * Why delivery to nexthop `label` (formatNexthop) is suspended at `now` (ms since the
   * epoch), or undefined when it is not.
   */
  suspended(label: string, now: number): string | undefined {
    const dead = this.#dead.get(label);
    return dead && dead.until > now ? dead.reason : undefined;
  }

  /** Marks `label` dead for `backoff` ms (minimal_backoff_time) from now because of `reason`. */
  markDead(label: string, reason: string, backoff: number): void {
    const wasDead = this.#dead.has(label);
    this.#dead.set(label, { until: this.#deps.clock.now() + backoff, reason });
    this.#deps.metrics.nexthopUp.set({ nexthop: label }, 0);
    if (!wasDead) this.#deps.log.warn({ event: 'nexthop dead', nexthop: label, reason }, `${label}: delivery temporarily suspended: ${reason}`);
  }

  /** Marks `label` reachable (a delivery went through it). */
  markUp(label: string): void {
    if (this.#dead.delete(label)) this.#deps.log.info({ event: 'nexthop up', nexthop: label }, `${label}: delivery resumed`);
    this.#deps.metrics.nexthopUp.set({ nexthop: label }, 1);
  }

  /** Forgets every dead nexthop (postqueue -f). */
  clear(): void {
    this.#dead.clear();
  }
}
