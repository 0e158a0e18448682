/*
 * reload-check — which parameter changes a reload cannot apply.
 *
 * Decides: a parameter marked `reload: 'restart'` in the catalogue has changed when its
 * typed value differs between the running and the new configuration (tables and match
 * lists compare by what main.cf wrote, their `type:name` specs; lists by their elements in
 * order), so that a reload names each such parameter once instead of keeping the old value
 * in silence.
 * Leaves to others: logging and applying the rest (main.ts), which parameters need a
 * restart (catalogue.ts).
 */
import { CATALOGUE, type ParameterName, type ParameterSpec } from './catalogue.js';
import type { Config } from './value.js';

/** The parameters a running mxscreen cannot apply, in catalogue order. */
export const RESTART_PARAMETERS: readonly ParameterName[] = (CATALOGUE as readonly ParameterSpec[])
  .filter((spec) => spec.reload === 'restart')
  .map((spec) => spec.name as ParameterName);

/** The restart-only parameters whose value differs between `running` and `next`, in catalogue order. */
export function restartOnlyChanges(running: Config, next: Config): ParameterName[] {
  return RESTART_PARAMETERS.filter((name) => comparable(running.get(name)) !== comparable(next.get(name)));
}

/** A text that is equal for two values exactly when main.cf gave them the same meaning. */
function comparable(value: unknown): string {
  return JSON.stringify(value, (_key, item: unknown) => {
    if (item !== null && typeof item === 'object' && 'spec' in item && typeof (item as { lookup?: unknown }).lookup === 'function') {
      return `table ${(item as { spec: unknown }).spec as string}`;
    }
    return item;
  });
}
