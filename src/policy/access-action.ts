/*
 * access-action — what the right-hand side of an access(5) table (or a policy server's
 * `action=`) tells smtpd(8) to do.
 *
 * Decides: the access(5) actions as a typed value: OK (and all-numeric results), REJECT
 * [text], DEFER [text], DUNNO, `4NN text` / `5NN text`, PREPEND header, WARN text, and
 * anything else as restriction names (a restriction class or a list such as
 * `permit_mynetworks, reject`); keywords are case-insensitive as in Postfix. Actions
 * smtpd cannot honour here (HOLD, DISCARD, FILTER, REDIRECT, BCC, DEFER_IF_*) are
 * `unsupported`: the caller answers `451 4.3.5 Server configuration error`.
 * Leaves to others: the lookup keys (access-restriction.ts), the reply wording (restriction.ts).
 */
import { splitList } from '../config/parameter-kind.js';
import { isHeaderLine } from '../message/header-field.js';

export type AccessAction =
  | { readonly kind: 'ok' }
  | { readonly kind: 'dunno' }
  | { readonly kind: 'reject'; readonly text: string | undefined }
  | { readonly kind: 'defer'; readonly text: string | undefined }
  | { readonly kind: 'reply'; readonly code: number; readonly text: string }
  | { readonly kind: 'prepend'; readonly header: string }
  | { readonly kind: 'warn'; readonly text: string }
  | { readonly kind: 'restrictions'; readonly words: readonly string[] }
  | { readonly kind: 'unsupported'; readonly action: string };

const UNSUPPORTED = ['HOLD', 'DISCARD', 'FILTER', 'REDIRECT', 'BCC', 'DEFER_IF_PERMIT', 'DEFER_IF_REJECT', 'INFO'] as const;

/** Reads one access(5) right-hand side. Source: access(5) "ACCESS ACTIONS". Never throws. */
export function parseAccessAction(rhs: string): AccessAction {
  const text = rhs.trim();
  const word = (/^\S+/.exec(text)?.[0] ?? '').toUpperCase();
  const rest = text.slice(word.length).trim();
  if (/^\d+$/.test(text)) return { kind: 'ok' };
  const numeric = /^([45]\d\d)(?:\s+(.*))?$/s.exec(text);
  if (numeric) return { kind: 'reply', code: Number(numeric[1]), text: (numeric[2] ?? '').trim() };
  switch (word) {
    case 'OK':
      return rest === '' ? { kind: 'ok' } : { kind: 'unsupported', action: text };
    case 'DUNNO':
      return { kind: 'dunno' };
    case 'REJECT':
      return { kind: 'reject', text: rest === '' ? undefined : rest };
    case 'DEFER':
      return { kind: 'defer', text: rest === '' ? undefined : rest };
    case 'PREPEND':
      return isHeaderLine(rest) ? { kind: 'prepend', header: rest } : { kind: 'unsupported', action: text };
    case 'WARN':
      return { kind: 'warn', text: rest };
    default:
      if ((UNSUPPORTED as readonly string[]).includes(word)) return { kind: 'unsupported', action: text };
      return text === '' ? { kind: 'unsupported', action: text } : { kind: 'restrictions', words: splitList(text) };
  }
}
