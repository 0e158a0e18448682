/*
 * attached-message — message/rfc822 parts that mailsplit leaves unparsed, split again.
 * Decides: mailsplit parses an embedded message only when not marked `attachment` and in
 * 7bit/8bit/binary; any other message/rfc822 or message/global part (Thunderbird/Outlook
 * "forward as attachment", base64/quoted-printable despite RFC 2046 §5.2.1) is decoded with
 * the part's decoder and fed, with backpressure, to its own Splitter, recursively; its nodes
 * go back to content-inspection.ts. Postfix parses such parts too but never decodes; we do,
 * as a mail reader may show them. Past mime_nesting_limit (containers around a part,
 * multipart and message, counted across the splitters) the part is `too-deep`; the inner
 * splitter has the bounds of content-limits.ts (splitterOptions).
 * Memory: one splitter per open level, bounded buffers, never a whole part.
 * Leaves to others: matching headers and what a failure means (content-inspection.ts);
 * queued bytes are untouched; the limits of the undecoded message (content-limits.ts).
 * Bugs: the inner splitter counts the parts and header sections of its own message only,
 * not together with the outer message's (mxscreen_mime_part_count_limit is per splitter here).
 */
import { pipeline, Writable, type Transform } from 'node:stream';
import { once } from 'node:events';
import { Splitter } from '@zone-eu/mailsplit';
import { splitterOptions, type ContentLimits } from './content-limits.js';

/** The parts of a mailsplit MimeNode this decision reads. */
export interface MessageNode {
  readonly contentType: string | false;
  readonly encoding: string | false;
  /** mailsplit: true when it parses the embedded message itself, false when it did not. */
  readonly messageNode?: boolean | undefined;
  readonly parentNode?: MessageNode | false | undefined;
  getDecoder(): Transform;
}

export type AttachedMessageDecision =
  | { readonly kind: 'none' }
  | { readonly kind: 'inspect'; readonly nesting: number }
  | { readonly kind: 'too-deep'; readonly nesting: number };

/** The containers around `node` in its splitter (0 for the root), plus `base` (its splitter's). */
export function nestingOf(node: MessageNode, base: number): number {
  let nesting = base;
  for (let parent = node.parentNode; parent; parent = parent.parentNode) nesting += 1;
  return nesting;
}

/**
 * What to do with `node` of a splitter whose root sits at nesting `base`: `too-deep` when
 * it (or, for an unparsed message part, its root) lies past `nestingLimit`
 * (mime_nesting_limit); `inspect` a message/rfc822 or message/global part that mailsplit
 * left unparsed (its root then sits at `nesting`); else `none`. Source: RFC 2046 §5.2.1,
 * postconf(5) mime_nesting_limit.
 */
export function attachedMessageDecision(node: MessageNode, base: number, nestingLimit: number): AttachedMessageDecision {
  const nesting = nestingOf(node, base);
  if (nesting > nestingLimit) return { kind: 'too-deep', nesting };
  const message = node.contentType === 'message/rfc822' || node.contentType === 'message/global';
  if (!message || node.messageNode === true) return { kind: 'none' };
  if (nesting + 1 > nestingLimit) return { kind: 'too-deep', nesting: nesting + 1 };
  return { kind: 'inspect', nesting: nesting + 1 };
}

/** One item of a Splitter's output (a MIME node, or data/body bytes of a node). */
export interface SplitItem {
  readonly type: string;
  readonly node?: unknown;
  readonly value?: Buffer;
}

/** Where the items of an attached message go (the inspection of its own nodes). */
export interface AttachedMessageInspector {
  /** One item of the attached message's splitter; the next waits for it. */
  item(item: SplitItem): Promise<void>;
  /** After the last item. */
  end(): Promise<void>;
  /** The nested split failed (a mailsplit EMAXLEN error when a limit was hit); called once, later writes are dropped. */
  failure(error: unknown): void;
}

/**
 * An attached message under inspection: `write` its body chunks (transfer-encoded, as
 * mailsplit emits them; resolves when more may be written), then `end` (resolves once every
 * item has been through the inspector and its `end` ran). Nothing reaches the queued message.
 */
export class AttachedMessage {
  readonly #decoder: Transform;
  #failed = false;
  readonly #finished: Promise<void>;

  constructor(node: MessageNode, inspector: AttachedMessageInspector, limits: ContentLimits) {
    this.#decoder = node.getDecoder();
    const splitter = new Splitter(splitterOptions(limits));
    const sink = new Writable({
      objectMode: true,
      write(item: SplitItem, _encoding, done) {
        inspector.item(item).then(() => done(), done);
      },
      final(done) {
        inspector.end().then(() => done(), done);
      },
    });
    this.#finished = new Promise<void>((resolve) => {
      pipeline(this.#decoder, splitter, sink, (error) => {
        if (error) {
          this.#failed = true;
          inspector.failure(error);
        }
        resolve();
      });
    });
  }

  /** Feeds one body chunk; waits for `drain` when the decoder's buffer is full (16 KiB). */
  async write(chunk: Buffer): Promise<void> {
    if (this.#failed || chunk.length === 0) return;
    if (!this.#decoder.write(chunk)) await Promise.race([once(this.#decoder, 'drain').catch(() => undefined), this.#finished]);
  }

  /** Ends the attached message; resolves when its last item has been inspected. */
  async end(): Promise<void> {
    if (!this.#failed) this.#decoder.end();
    await this.#finished;
  }
}
