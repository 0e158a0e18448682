/*
 * percentile — the latency percentile every benchmark reports (nearest rank).
 *
 * Decides: p-th percentile (p in 0..100) of samples already sorted ascending, by nearest
 * rank; NaN for no samples. Leaves to others: collecting and sorting the samples.
 */

/** The `p`-th percentile (0..100) of `sorted` (ascending), or NaN when it is empty. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}
