/*
 * header-checks — what one header_checks(5) rule tells cleanup(8) to do with a header.
 *
 * Decides: the actions as a typed value: REJECT [text] (default `message content
 * rejected`), WARN [text], DISCARD [text], HOLD [text], IGNORE (drop the header),
 * PREPEND text (add a header line before this one), DUNNO and OK (go on); anything
 * else is `unsupported` (logged, then ignored, as Postfix warns and goes on). Also which
 * tables a header is matched against (Postfix cleanup(8)): top-level non-MIME headers →
 * header_checks; MIME headers (Content-*, MIME-Version) at any level →
 * mime_header_checks; the non-MIME headers of an attached message (message/rfc822) →
 * nested_header_checks.
 * Leaves to others: streaming the message and decoding headers (content-inspection.ts).
 */
import type { LookupTable } from '../tables/lookup-table.js';
import { isHeaderLine } from '../message/header-field.js';

export type HeaderAction =
  | { readonly kind: 'reject'; readonly text: string }
  | { readonly kind: 'warn'; readonly text: string }
  | { readonly kind: 'discard'; readonly text: string }
  | { readonly kind: 'hold'; readonly text: string }
  | { readonly kind: 'ignore' }
  | { readonly kind: 'prepend'; readonly header: string }
  | { readonly kind: 'dunno' }
  | { readonly kind: 'unsupported'; readonly action: string };

/** Reads a header_checks(5) right-hand side. Never throws. */
export function parseHeaderAction(rhs: string): HeaderAction {
  const text = rhs.trim();
  const word = (/^\S+/.exec(text)?.[0] ?? '').toUpperCase();
  const rest = text.slice(word.length).trim();
  switch (word) {
    case 'REJECT':
      return { kind: 'reject', text: rest || 'message content rejected' };
    case 'WARN':
      return { kind: 'warn', text: rest };
    case 'DISCARD':
      return { kind: 'discard', text: rest };
    case 'HOLD':
      return { kind: 'hold', text: rest };
    case 'IGNORE':
      return { kind: 'ignore' };
    case 'PREPEND':
      return isHeaderLine(rest) ? { kind: 'prepend', header: rest } : { kind: 'unsupported', action: text };
    case 'DUNNO':
    case 'OK':
      return { kind: 'dunno' };
    default:
      return { kind: 'unsupported', action: text };
  }
}

/** Which header_checks parameter applies. */
export type HeaderClass = 'header_checks' | 'mime_header_checks' | 'nested_header_checks';

export interface HeaderCheckTables {
  readonly header_checks: readonly LookupTable[];
  readonly mime_header_checks: readonly LookupTable[];
  readonly nested_header_checks: readonly LookupTable[];
}

/** True for a MIME header name (RFC 2045: MIME-Version and Content-*). */
export function isMimeHeader(name: string): boolean {
  const lowered = name.toLowerCase();
  return lowered === 'mime-version' || lowered.startsWith('content-');
}

/** The class of a header named `name` in a part that is `top` (the message), `attached` (an rfc822 message inside) or a MIME `part`. */
export function headerClass(name: string, where: 'top' | 'attached' | 'part'): HeaderClass {
  if (isMimeHeader(name) || where === 'part') return 'mime_header_checks';
  return where === 'top' ? 'header_checks' : 'nested_header_checks';
}

/** The first rule that matches one of `candidates` (tried in order) in `tables`. */
export function matchHeader(
  tables: readonly LookupTable[],
  candidates: readonly string[],
): { table: LookupTable; line: number; action: HeaderAction; matched: string } | undefined {
  for (const candidate of candidates) {
    for (const table of tables) {
      const found = table.find ? table.find(candidate) : (() => {
        const value = table.lookup(candidate);
        return value === undefined ? undefined : { value, line: 0 };
      })();
      if (found !== undefined) return { table, line: found.line, action: parseHeaderAction(found.value), matched: candidate };
    }
  }
  return undefined;
}
