/*
 * seeded-random — a reproducible random source for property tests.
 *
 * Decides: mulberry32 over a 32-bit seed; the seed comes from MXSCREEN_TEST_SEED when set
 * (to replay a failure), else from the clock, and every property test prints it. Sizes are
 * drawn log-uniformly, so a range of 1 byte to 8 MiB gives small, batch-sized and large
 * values alike.
 * Leaves to others: what is generated with it.
 */

export class SeededRandom {
  readonly seed: number;
  #state: number;

  constructor(seed = Number(process.env['MXSCREEN_TEST_SEED'] ?? Date.now() % 2 ** 32)) {
    this.seed = seed >>> 0;
    this.#state = this.seed;
  }

  /** Uniform in [0, 1). */
  next(): number {
    this.#state = (this.#state + 0x6d2b79f5) >>> 0;
    let t = this.#state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  }

  /** An integer in [low, high], uniform. */
  integer(low: number, high: number): number {
    return low + Math.floor(this.next() * (high - low + 1));
  }

  /** An integer in [low, high] (low ≥ 1), log-uniform: each power of two about as likely. */
  logInteger(low: number, high: number): number {
    const value = Math.floor(Math.exp(Math.log(low) + this.next() * (Math.log(high + 1) - Math.log(low))));
    return Math.min(high, Math.max(low, value));
  }

  /** One of `values`. */
  pick<T>(values: readonly T[]): T {
    return values[Math.floor(this.next() * values.length)]!;
  }
}
