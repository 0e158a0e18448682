/*
 * connection-cache — open SMTP connections per nexthop (Postfix scache(8) and the queue
 * manager's per-destination concurrency, default_destination_concurrency_limit).
 *
 * Decides: at most `limit` connections (busy or idle) per nexthop key; a delivery that
 * finds none free waits in FIFO order; a connection that finished a message is kept
 * idle for smtp_connection_cache_time_limit and handed to the next delivery to the same
 * nexthop (connection reuse), then closed. A connection the server closes while idle
 * leaves the cache at once.
 * Leaves to others: the SMTP dialogue on a connection (smtp-delivery.ts), which nexthop
 * a recipient goes to (transport.ts).
 * Bugs: the limit is per process; the key is the nexthop text, so two nexthops naming
 * the same host share nothing.
 */
import type { Clock, Timer } from '../clock.js';

/** What the cache needs of a connection. */
export interface CachedConnection {
  /** False once the server or the client closed it. */
  readonly open: boolean;
  /** Closes it (QUIT when possible). Never throws. */
  close(): void;
  /** Sets the listener called once when the connection closes by itself (replaces the last one). */
  setOnClose(listener: () => void): void;
}

/** The right to one connection to a nexthop: an idle one to reuse, or a slot for a new one. */
export interface ConnectionLease<C extends CachedConnection> {
  /** An idle connection to reuse, when one was cached. */
  readonly reuse: C | undefined;
  /** Gives the slot back; with a connection that may carry another message, caches it. */
  release(connection?: C): void;
}

interface NexthopEntry<C> {
  /** Connections counted against the limit: busy, idle, or being opened. */
  count: number;
  readonly idle: { connection: C; timer: Timer }[];
  readonly waiters: (() => void)[];
}

export class ConnectionCache<C extends CachedConnection> {
  readonly #entries = new Map<string, NexthopEntry<C>>();
  readonly #clock: Clock;
  #idleTime: number;

  /** `idleTime`: ms an idle connection is kept (smtp_connection_cache_time_limit; 0 = no reuse). */
  constructor(options: { readonly clock: Clock; readonly idleTime: number }) {
    this.#clock = options.clock;
    this.#idleTime = options.idleTime;
  }

  /** Takes a new idle time (reload); cached connections keep their timers. */
  setIdleTime(ms: number): void {
    this.#idleTime = ms;
  }

  /**
   * Waits for a connection slot for nexthop `key` (at most `limit` ≥ 1 at once). Resolves
   * undefined when `signal` aborts first. Never rejects.
   */
  async acquire(key: string, limit: number, signal?: AbortSignal): Promise<ConnectionLease<C> | undefined> {
    // Bounded: each pass either returns or waits for a release (one per finished delivery).
    for (;;) {
      if (signal?.aborted) return undefined;
      const entry = this.#entry(key); // anew each pass: an empty entry is dropped from the map
      const cached = entry.idle.pop();
      if (cached) {
        cached.timer.cancel();
        if (cached.connection.open) return this.#lease(key, entry, cached.connection);
        entry.count -= 1;
        continue;
      }
      if (entry.count < Math.max(1, limit)) {
        entry.count += 1;
        return this.#lease(key, entry, undefined);
      }
      await new Promise<void>((resolve) => {
        const wake = () => {
          signal?.removeEventListener('abort', wake);
          const index = entry.waiters.indexOf(wake);
          if (index >= 0) entry.waiters.splice(index, 1);
          resolve();
        };
        entry.waiters.push(wake);
        signal?.addEventListener('abort', wake, { once: true });
      });
    }
  }

  /** Connections to `key` now counted (busy, idle, opening). */
  connections(key: string): number {
    return this.#entries.get(key)?.count ?? 0;
  }

  /** Idle connections cached for `key`. */
  idle(key: string): number {
    return this.#entries.get(key)?.idle.length ?? 0;
  }

  /** Closes every idle connection (stop). Busy ones are closed by their delivery. */
  closeIdle(): void {
    for (const [key, entry] of this.#entries) {
      for (const { connection, timer } of entry.idle.splice(0)) {
        timer.cancel();
        connection.close();
        entry.count -= 1;
      }
      this.#wake(key, entry);
    }
  }

  #entry(key: string): NexthopEntry<C> {
    let entry = this.#entries.get(key);
    if (!entry) {
      entry = { count: 0, idle: [], waiters: [] };
      this.#entries.set(key, entry);
    }
    return entry;
  }

  #lease(key: string, entry: NexthopEntry<C>, reuse: C | undefined): ConnectionLease<C> {
    let released = false;
    return {
      reuse,
      release: (connection) => {
        if (released) return;
        released = true;
        if (connection?.open && this.#idleTime > 0) this.#keepIdle(key, entry, connection);
        else {
          connection?.close();
          entry.count -= 1;
        }
        this.#wake(key, entry);
      },
    };
  }

  #keepIdle(key: string, entry: NexthopEntry<C>, connection: C): void {
    const slot = {
      connection,
      timer: this.#clock.setTimer(this.#idleTime, () => drop(true)),
    };
    const drop = (close: boolean) => {
      const index = entry.idle.indexOf(slot);
      if (index < 0) return; // taken for reuse meanwhile
      entry.idle.splice(index, 1);
      slot.timer.cancel();
      if (close) connection.close();
      entry.count -= 1;
      this.#wake(key, entry);
    };
    entry.idle.push(slot);
    connection.setOnClose(() => drop(false));
  }

  #wake(key: string, entry: NexthopEntry<C>): void {
    entry.waiters.shift()?.();
    if (entry.count === 0 && entry.idle.length === 0 && entry.waiters.length === 0) this.#entries.delete(key);
  }
}
