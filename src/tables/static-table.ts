/*
 * static-table — Postfix `static:value`: every lookup returns the same value.
 *
 * Decides: the value is the text after `static:`, with `static:{ text with spaces }`
 * braces removed (Postfix 3.0); an empty value is allowed.
 * Leaves to others: what the value means (e.g. `static:all` in allowlist parameters).
 */
import type { LookupTable } from './lookup-table.js';

/** A table named `spec` whose lookup of any key returns `value` (braces removed). */
export function staticTable(spec: string, value: string): LookupTable {
  const trimmed = value.trim();
  const result = trimmed.startsWith('{') && trimmed.endsWith('}') ? trimmed.slice(1, -1).trim() : trimmed;
  return { spec, lookup: () => result };
}
