/*
 * content-inspection — header_checks, mime_header_checks, nested_header_checks and
 * mxscreen_blocked_attachment_types while the message streams in (cleanup(8)).
 * Decides: DATA goes Splitter → inspector → Joiner (@zone-eu/mailsplit), one MIME node's
 * headers in memory at a time. Headers are matched unfolded, RFC 2047-decoded, and for
 * Content-Type/-Disposition with the decoded RFC 2231 filename. Tables as cleanup(8): MIME
 * and part headers → mime_header_checks, the message's → header_checks, an attached
 * message's → nested_header_checks. REJECT > DISCARD > HOLD, applied at the end of DATA;
 * nothing is inspected after a REJECT. Blocked types: declared or filename-implied type.
 * A limit hit inside the inspection (mime_nesting_limit in a decoded attached message, a
 * mailsplit bound: header section, node count) is a `limit` verdict, above REJECT: the
 * splitter's error stops the splitting, never the stream, so DATA is still read to its end.
 * Leaves to others: actions (header-checks.ts), attached messages mailsplit does not parse
 * (attached-message.ts), the limits and their replies (content-limits.ts), queueing and the
 * reply (cleanup.ts, smtpd.ts).
 * Bugs: IGNORE drops every header of that name in a node, PREPEND adds at its top; neither
 * acts inside an attached message that attached-message.ts splits (queued as sent).
 */
import { pipeline, Transform, type Readable, type TransformCallback } from 'node:stream';
import { Joiner, Splitter } from '@zone-eu/mailsplit';
import mime from 'mime-types';
import type { Logger } from '../ops/log.js';
import type { SmtpReply } from '../errors.js';
import { headerClass, matchHeader, type HeaderCheckTables } from './header-checks.js';
import { AttachedMessage, attachedMessageDecision, type MessageNode, type SplitItem } from './attached-message.js';
import { DEFAULT_CONTENT_LIMITS, limitRefusal, splitterOptions, splitterRefusal, type ContentLimits, type LimitRefusal } from './content-limits.js';

export interface ContentSettings {
  readonly tables: HeaderCheckTables;
  /** mxscreen_blocked_attachment_types, lower-cased: `type/subtype`, `type/*` or `type`. */
  readonly blockedTypes: readonly string[];
}

/** Where a verdict came from, for the log line: table (or parameter), file line, header. */
export interface ContentMatch {
  readonly source: string;
  readonly line: number;
  readonly header: string;
}

export type ContentVerdict =
  | { readonly kind: 'accept' }
  | { readonly kind: 'reject'; readonly reply: SmtpReply; readonly match: ContentMatch }
  | { readonly kind: 'discard'; readonly text: string; readonly match: ContentMatch }
  | { readonly kind: 'hold'; readonly text: string; readonly match: ContentMatch }
  /** A safety limit refused the message (content-limits.ts); wins over every other verdict. */
  | { readonly kind: 'limit'; readonly refusal: LimitRefusal };

export interface ContentInspection {
  /** The message bytes to queue (headers rewritten by IGNORE/PREPEND, the rest unchanged). */
  readonly output: Readable;
  /** The verdict so far; final once `output` has ended. */
  verdict(): ContentVerdict;
}

/** What mailsplit hands us for a MIME node (the parts of its MimeNode we use). */
interface SplitNode extends MessageNode {
  readonly type: 'node';
  readonly root: boolean;
  readonly parentNode?: SplitNode | false;
  readonly filename: string | false;
  readonly headers: {
    getList(): { key: string; line: string }[];
    remove(key: string): void;
    addFormatted(key: string, line: string, index?: number): void;
  };
  readonly libmime: { decodeWords(text: string): string };
}

const RANK = { accept: 0, hold: 1, discard: 2, reject: 3, limit: 4 } as const;

/** An attached message whose own split failed for another reason than a limit: not inspected, so not taken. */
const ATTACHED_MESSAGE_FAILURE: SmtpReply = { code: 550, enhanced: '5.6.0', text: 'Attached message cannot be inspected' };

/** True when `type` is blocked by one of `blocked` (exact type, `family/*` or `family`). */
export function typeBlocked(type: string, blocked: readonly string[]): boolean {
  const lowered = type.toLowerCase();
  const family = lowered.split('/')[0] ?? '';
  return blocked.some((entry) => entry === lowered || entry === `${family}/*` || entry === family);
}

/** The forms of a header line that rules are matched against, in order (see file head). */
export function headerCandidates(node: Pick<SplitNode, 'filename' | 'libmime'>, key: string, line: string): string[] {
  const unfolded = line.replace(/\r?\n/g, '');
  const candidates = [unfolded];
  let decoded = unfolded;
  try {
    decoded = node.libmime.decodeWords(unfolded);
  } catch {
    // an unknown charset: keep the raw form only
  }
  if (decoded !== unfolded) candidates.push(decoded);
  const name = unfolded.slice(0, unfolded.indexOf(':'));
  if ((key === 'content-type' || key === 'content-disposition') && node.filename) {
    const value = unfolded.slice(name.length + 1).split(';')[0]!.trim();
    const parameter = key === 'content-type' ? 'name' : 'filename';
    candidates.push(`${name}: ${value}; ${parameter}="${node.filename}"`);
  }
  return candidates;
}

/**
 * A mailsplit Splitter whose limit errors (EMAXLEN) are handed to `refused` instead of
 * failing the stream: from then on it emits nothing more and swallows its input, so the
 * pipeline ends normally when the input does. Other errors fail the stream as before.
 */
class LimitedSplitter extends Splitter {
  readonly #refused: (error: unknown) => boolean;
  #stopped = false;

  /** `refused(error)` answers whether `error` is a limit (and then records it). */
  constructor(limits: ContentLimits, refused: (error: unknown) => boolean) {
    super(splitterOptions(limits));
    this.#refused = refused;
  }

  #settle(callback: TransformCallback): TransformCallback {
    return (error, data) => {
      if (error && this.#refused(error)) {
        this.#stopped = true;
        callback();
      } else callback(error, data);
    };
  }

  override _transform(chunk: Buffer, encoding: BufferEncoding, callback: TransformCallback): void {
    if (this.#stopped) return callback();
    super._transform(chunk, encoding, this.#settle(callback));
  }

  override _flush(callback: TransformCallback): void {
    if (this.#stopped) return callback();
    super._flush(this.#settle(callback));
  }
}

/**
 * Starts inspecting `input` (the DATA stream, after content-limits.ts). `output` must be
 * read to its end; errors of `input` (the client went away) reach `output`. `output`
 * carries the input bytes (only IGNORE/PREPEND change headers of nodes the top-level
 * splitter parses); attached messages are inspected beside it and `output` ends after them.
 * `limits` bound the splitters and the nesting of decoded attached messages.
 * Source: header_checks(5), cleanup(8).
 */
export function inspectContent(input: Readable, settings: ContentSettings, log: Logger, limits: ContentLimits = DEFAULT_CONTENT_LIMITS): ContentInspection {
  let verdict: ContentVerdict = { kind: 'accept' };
  const context: InspectionContext = {
    settings,
    limits,
    log,
    raise: (next) => {
      if (RANK[next.kind] > RANK[verdict.kind]) verdict = next;
    },
    stopped: () => verdict.kind === 'reject' || verdict.kind === 'limit',
    splitterLimit: (error) => {
      const refusal = splitterRefusal(error, limits);
      if (refusal) context.raise({ kind: 'limit', refusal });
      return refusal !== undefined;
    },
  };
  const top = walkMessage(0, false, context);
  const inspector = new Transform({
    objectMode: true,
    transform(item: SplitItem, _encoding, done) {
      top.handle(item).then(() => done(null, item), (err: unknown) => {
        log.error({ event: 'smtp error', err }, 'content inspection failed on a MIME node');
        done(null, item);
      });
    },
    flush(done) {
      top.close().then(() => done(), () => done());
    },
  });
  // defaultInlineEmbedded (splitterOptions): an attached message is parsed unless marked attachment.
  const output = pipeline(input, new LimitedSplitter(limits, context.splitterLimit), inspector, new Joiner(), () => undefined) as unknown as Readable;
  return { output, verdict: () => verdict };
}

/** What one inspection shares between its splitters (the DATA's and each attached message's). */
interface InspectionContext {
  readonly settings: ContentSettings;
  readonly limits: ContentLimits;
  readonly log: Logger;
  /** Keeps `next` when it outranks the verdict so far (limit > REJECT > DISCARD > HOLD). */
  raise(next: ContentVerdict): void;
  /** True once a REJECT or a limit decided: nothing more is inspected. */
  stopped(): boolean;
  /** A mailsplit limit error becomes the `limit` verdict; true when `error` was one. */
  splitterLimit(error: unknown): boolean;
}

/** The items of one message, handed over one at a time, and its end. */
interface MessageWalk {
  handle(item: SplitItem): Promise<void>;
  close(): Promise<void>;
}

/**
 * The items of one message: the DATA (`base` 0) or an attached message split again (its
 * root at `base`, `nested`). Each node is inspected; body chunks of an unparsed message part
 * go to its AttachedMessage.
 */
function walkMessage(base: number, nested: boolean, context: InspectionContext): MessageWalk {
  const { limits, log } = context;
  let open: { node: unknown; message: AttachedMessage } | undefined;
  const close = async (): Promise<void> => {
    const current = open;
    open = undefined;
    if (current) await current.message.end();
  };
  const handle = async (item: SplitItem): Promise<void> => {
    if (open && item.type === 'body' && item.node === open.node) {
      if (item.value && !context.stopped()) await open.message.write(item.value);
      return;
    }
    await close();
    if (item.type !== 'node' || context.stopped()) return;
    const node = item as unknown as SplitNode;
    try {
      inspectNode(node, nested, context);
    } catch (err) {
      log.error({ event: 'smtp error', err }, 'content inspection failed on a MIME node');
    }
    const decision = attachedMessageDecision(node, base, limits.mimeNestingLimit);
    switch (decision.kind) {
      case 'none':
        break;
      case 'too-deep':
        context.raise({ kind: 'limit', refusal: limitRefusal('mime_nesting_limit', limits.mimeNestingLimit, `Content-Type: ${node.contentType || 'text/plain'} (nesting ${decision.nesting})`) });
        break;
      case 'inspect':
        open = { node, message: attachedMessage(node, decision.nesting, context) };
        break;
      default: {
        const never: never = decision;
        throw new Error(`unhandled attached message decision ${JSON.stringify(never)}`);
      }
    }
  };
  return { handle, close };
}

/**
 * The inspection of an attached message mailsplit does not parse (attached-message.ts): its
 * own splitter walks it at `nesting`; a failure that is not a limit is a REJECT (5.6.0), as
 * a message that cannot be inspected is not taken.
 */
function attachedMessage(node: SplitNode, nesting: number, context: InspectionContext): AttachedMessage {
  const inner = walkMessage(nesting, true, context);
  const failure = (err: unknown): void => {
    if (context.splitterLimit(err)) return;
    context.log.warn({ event: 'WARN', err }, `warning: attached message not inspected: ${err instanceof Error ? err.message : String(err)}`);
    context.raise({ kind: 'reject', reply: ATTACHED_MESSAGE_FAILURE, match: { source: 'attached message', line: 0, header: `Content-Type: ${node.contentType}` } });
  };
  return new AttachedMessage(node, { item: inner.handle, end: inner.close, failure }, context.limits);
}

/** Matches one node's headers and its type; `nested` for the nodes of an attached message's own splitter. */
function inspectNode(node: SplitNode, nested: boolean, context: InspectionContext): void {
  const parentIsMessage = node.parentNode ? node.parentNode.contentType === 'message/rfc822' : false;
  const where = node.root ? (nested ? 'attached' : 'top') : parentIsMessage ? 'attached' : 'part';
  const edits = matchHeaders(node, where, context);
  // XXX: inside a split-again attached message the bytes are queued as sent: IGNORE and
  // PREPEND have nowhere to go (the node objects are not joined into the output).
  if (!nested) {
    for (const key of edits.ignored) node.headers.remove(key);
    for (const header of edits.prepended.reverse()) node.headers.addFormatted(header.slice(0, header.indexOf(':')).toLowerCase(), header, 0);
  }
  if (context.settings.blockedTypes.length > 0 && !(node.root && !nested)) {
    const blocked = blockedAttachment(node, context.settings.blockedTypes);
    if (blocked) context.raise(blocked);
  }
}

/**
 * Applies the tables of `where` to each header of `node` (header-checks.ts): REJECT,
 * DISCARD and HOLD are raised, WARN and unsupported actions logged; returns the header
 * names IGNORE drops and the headers PREPEND adds, in table order.
 */
function matchHeaders(node: SplitNode, where: 'top' | 'attached' | 'part', context: InspectionContext): { ignored: string[]; prepended: string[] } {
  const { settings, log } = context;
  const ignored: string[] = [];
  const prepended: string[] = [];
  for (const { key, line } of node.headers.getList()) {
    const tables = settings.tables[headerClass(key, where)];
    if (tables.length === 0) continue;
    const found = matchHeader(tables, headerCandidates(node, key, line));
    if (found === undefined) continue;
    const match: ContentMatch = { source: found.table.spec, line: found.line, header: found.matched };
    const action = found.action;
    switch (action.kind) {
      case 'reject':
        context.raise({ kind: 'reject', reply: contentReply(action.text), match });
        break;
      case 'discard':
        context.raise({ kind: 'discard', text: action.text, match });
        break;
      case 'hold':
        context.raise({ kind: 'hold', text: action.text, match });
        break;
      case 'warn':
        log.warn({ event: 'WARN', table: match.source, line: match.line, header: match.header }, `warning: header ${match.header}: ${action.text} (${match.source}:${match.line})`);
        break;
      case 'ignore':
        ignored.push(key);
        break;
      case 'prepend':
        prepended.push(action.header);
        break;
      case 'dunno':
        break;
      case 'unsupported':
        log.warn({ event: 'WARN', table: match.source, line: match.line }, `warning: ${match.source}:${match.line}: unsupported header_checks action "${action.action}"`);
        break;
      default: {
        const never: never = action;
        throw new Error(`unhandled header_checks action ${JSON.stringify(never)}`);
      }
    }
  }
  return { ignored, prepended };
}

/** The REJECT of a node whose declared or filename-implied type is in `blocked` (mxscreen_blocked_attachment_types), else undefined. */
function blockedAttachment(node: SplitNode, blocked: readonly string[]): ContentVerdict | undefined {
  const declared = node.contentType || '';
  const implied = node.filename ? mime.lookup(node.filename) || '' : '';
  const type = [declared, implied].find((candidate) => candidate !== '' && typeBlocked(candidate, blocked));
  if (type === undefined) return undefined;
  const name = node.filename ? ` (${node.filename})` : '';
  return {
    kind: 'reject',
    reply: contentReply(`Attachment type ${type}${name} is not allowed`),
    match: { source: 'mxscreen_blocked_attachment_types', line: 0, header: `Content-Type: ${declared}${name}` },
  };
}

/** `550 5.7.1 text` (cleanup(8) header_checks REJECT; an enhanced code in the text wins). */
export function contentReply(text: string): SmtpReply {
  const own = /^([45]\.\d{1,3}\.\d{1,3})\s+(.*)$/s.exec(text);
  return own ? { code: own[1]!.startsWith('4') ? 451 : 550, enhanced: own[1]!, text: own[2]! } : { code: 550, enhanced: '5.7.1', text };
}
