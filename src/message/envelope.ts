/*
 * envelope — what travels with a message besides its bytes (RFC 5321 §2.3.1: the
 * reverse-path and the forward-paths), with the RFC 3461 DSN parameters the client gave
 * and the client facts a Received: header and a DSN need.
 *
 * Decides: the envelope's shape, which the policy stage records in a queue file, the
 * queue schedules and notifies by, and a delivery agent sends as MAIL FROM and RCPT TO;
 * and the domain of an envelope address. It lives here, outside the stage folders, so
 * queue/ and delivery/ both read it without an import between them (README "Design").
 * Leaves to others: the policy → queue seam that carries it (queue/envelope.ts), the
 * queue file format (queue/queue-file.ts), xtext on the wire (delivery/xtext.ts).
 */

export interface QueueRecipient {
  /** RFC 5321 forward-path without angle brackets, e.g. `joe@example.com`. */
  readonly address: string;
  /**
   * RFC 3461 ORCPT as the client gave it, its address decoded from xtext
   * (`rfc822;joe+x@example.com` for `ORCPT=rfc822;joe+2Bx@example.com`); absent when it gave none.
   */
  readonly orcpt?: string;
  /** RFC 3461 NOTIFY values, upper case (`SUCCESS`, `FAILURE`, `DELAY`, or `NEVER` alone); absent when the client gave none. */
  readonly notify?: readonly string[];
}

export interface Envelope {
  /** RFC 5321 reverse-path without angle brackets; empty string for the null sender `<>`. */
  readonly sender: string;
  readonly recipients: readonly QueueRecipient[];
  /** When the client sent DATA's final dot, ms since the epoch. */
  readonly arrivalTime: number;
  readonly client: {
    readonly address: string;
    readonly port: number;
    /** HELO/EHLO argument, if any. */
    readonly helo?: string;
  };
  /** Session id of the SMTP session that brought the message, for log correlation. */
  readonly sessionId: string;
  /** RFC 3461 ENVID (decoded from xtext) and RET, when the client gave them. */
  readonly dsn?: { readonly envid?: string; readonly ret?: 'FULL' | 'HDRS' };
}

/** The domain part of an address, lower-cased (empty when there is no @). */
export function recipientDomain(address: string): string {
  const at = address.lastIndexOf('@');
  return at < 0 ? '' : address.slice(at + 1).toLowerCase();
}
