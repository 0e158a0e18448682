/*
 * content-limits — cleanup(8)'s safety limits on a message's structure, applied to every
 * message while it streams in, whether or not content checks are configured.
 *
 * Decides: header_size_limit (a logical header longer than this is cut, the excess is
 * discarded and the message still taken, as cleanup(8) does: its first line is cut at the
 * limit but never inside the name and colon, a continuation line that does not fit is
 * dropped whole, and so are the ones after it); mime_boundary_length_limit (a boundary is
 * compared on its first N bytes, as mime_state(3) does; a delimiter line of such a cut
 * boundary closes the multipart when it ends in `--` after the boundary's full length,
 * where mime_state(3) would take it for one more part); the refusals, all permanent:
 * mime_nesting_limit `550 5.6.0 MIME nesting exceeds safety limit` (cleanup(8)'s reply
 * and words, applied always although Postfix reports it only with content checks or
 * strict MIME options on: a front-line MX has no use for such mail), and mxscreen's own
 * mxscreen_header_count_limit and mxscreen_mime_part_count_limit (`552 5.6.0`, Postfix has
 * no such counts). After a refusal nothing more is passed on; the input is still read to
 * its end. The MIME structure is read as mime_state(3) reads it: a header section ends at
 * a blank line or at a line that is no header; multipart boundaries are stacked, a
 * delimiter line closes every container opened after its multipart; message/rfc822 bodies
 * begin with headers; multipart/digest parts default to message/rfc822. Also: the bounds of
 * the content inspection's MIME splitter (mailsplit) and what its limit errors mean.
 * Memory: one line head (≤ max(mime_boundary_length_limit + 4, 1000) bytes) and one
 * Content-Type header (≤ header_size_limit) at a time, never a whole header or message.
 * Leaves to others: when the reply is sent and the queue file (cleanup.ts), logging
 * (end-of-message.ts), header checks (content-inspection.ts).
 * Bugs: parts and nesting inside an attached message that is base64/quoted-printable
 * encoded are not seen here (content-inspection.ts decodes them and bounds its own
 * splitter); a second Content-Type header in one section replaces the first (Postfix
 * stacks both boundaries); RFC 2231 continued boundaries are not joined (neither are
 * they in Postfix).
 */
import { finished, Transform, type Readable, type TransformCallback } from 'node:stream';
import type { Config } from '../config/value.js';
import type { SmtpReply } from '../errors.js';

/** The limits, read from main.cf (contentLimitsFromConfig); units as named. */
export interface ContentLimits {
  /** header_size_limit: bytes of one logical header, its lines joined by one newline each. */
  readonly headerSizeLimit: number;
  /** mxscreen_header_count_limit: header fields in one header section. */
  readonly headerCountLimit: number;
  /** mime_nesting_limit: containers (multipart, message/rfc822) around a MIME part. */
  readonly mimeNestingLimit: number;
  /** mime_boundary_length_limit: bytes of a boundary that are compared. */
  readonly mimeBoundaryLengthLimit: number;
  /** mxscreen_mime_part_count_limit: body parts of the multiparts of one message, at every level. */
  readonly mimePartCountLimit: number;
}

/** The catalogue defaults (postconf(5) for Postfix's parameters), for callers without a main.cf. */
export const DEFAULT_CONTENT_LIMITS: ContentLimits = {
  headerSizeLimit: 102400,
  headerCountLimit: 1000,
  mimeNestingLimit: 100,
  mimeBoundaryLengthLimit: 2048,
  mimePartCountLimit: 1000,
};

/** Reads header_size_limit, mxscreen_header_count_limit, mime_nesting_limit, mime_boundary_length_limit, mxscreen_mime_part_count_limit. */
export function contentLimitsFromConfig(config: Config): ContentLimits {
  return {
    headerSizeLimit: config.get('header_size_limit'),
    headerCountLimit: config.get('mxscreen_header_count_limit'),
    mimeNestingLimit: config.get('mime_nesting_limit'),
    mimeBoundaryLengthLimit: config.get('mime_boundary_length_limit'),
    mimePartCountLimit: config.get('mxscreen_mime_part_count_limit'),
  };
}

/**
 * A limit that refuses the message: a parameter, or the content inspection's bound on one
 * header section (mailsplit holds a section in memory; see inspectionHeaderSectionLimit).
 */
export type LimitName = 'mime_nesting_limit' | 'mxscreen_header_count_limit' | 'mxscreen_mime_part_count_limit' | 'content inspection header section';

/** Why a message is refused: the limit, its value, the reply, what was being read. */
export interface LimitRefusal {
  readonly limit: LimitName;
  readonly value: number;
  readonly reply: SmtpReply;
  /** The line (or header) being read when the limit was hit, at most 100 printable characters. */
  readonly where: string;
}

/** A limit that changed the message without refusing it (logged once per message and limit). */
export interface LimitNotice {
  readonly limit: 'header_size_limit' | 'mime_boundary_length_limit';
  /** The limit's value, bytes. */
  readonly value: number;
  /** `header NAME` or `boundary "…"` (at most 100 printable characters). */
  readonly where: string;
}

const REPLIES: Readonly<Record<LimitName, SmtpReply>> = {
  // cleanup(8): CLEANUP_STAT_CONT (550) with mime_state(3)'s MIME_ERR_NESTING detail.
  mime_nesting_limit: { code: 550, enhanced: '5.6.0', text: 'MIME nesting exceeds safety limit' },
  // mxscreen's own counts: 552, RFC 5321 §4.2.2 "exceeded storage allocation"; 5.6.0 as mime_state(3).
  mxscreen_header_count_limit: { code: 552, enhanced: '5.6.0', text: 'Message header count exceeds safety limit' },
  mxscreen_mime_part_count_limit: { code: 552, enhanced: '5.6.0', text: 'MIME part count exceeds safety limit' },
  'content inspection header section': { code: 552, enhanced: '5.6.0', text: 'Message header section exceeds safety limit' },
};

/** The refusal for `limit` (of `value`) hit while reading `where`; the reply as REPLIES above. */
export function limitRefusal(limit: LimitName, value: number, where: string): LimitRefusal {
  return { limit, value, reply: REPLIES[limit], where: printable(where) };
}

/** At most 100 characters of `text`, line ends and other control characters as spaces. */
function printable(text: string): string {
  const clean = text.replace(/[\x00-\x1f\x7f]+/g, ' ').trim();
  return clean.length > 100 ? `${clean.slice(0, 100)}…` : clean;
}

/**
 * The bound of one header section in the content inspection's splitter (mailsplit keeps a
 * section in memory until its blank line): mailsplit's own 1 MiB, or twice header_size_limit
 * when that is larger, so that one header this stage lets through always fits. Bytes.
 */
export function inspectionHeaderSectionLimit(limits: ContentLimits): number {
  return Math.max(1024 * 1024, 2 * limits.headerSizeLimit);
}

/**
 * mailsplit Splitter options for the content inspection: embedded messages parsed unless
 * marked attachment, header sections bounded (inspectionHeaderSectionLimit), and room for
 * every node this stage lets through (each part, and one embedded message root per part and
 * for the top level: 2 × mimePartCountLimit + 2), so that mailsplit only trips where it reads
 * the structure differently.
 */
export function splitterOptions(limits: ContentLimits): { defaultInlineEmbedded: true; maxHeadSize: number; maxChildNodes: number } {
  return { defaultInlineEmbedded: true, maxHeadSize: inspectionHeaderSectionLimit(limits), maxChildNodes: 2 * limits.mimePartCountLimit + 2 };
}

/** The refusal a mailsplit limit error (code EMAXLEN) stands for; undefined for any other error. */
export function splitterRefusal(error: unknown, limits: ContentLimits): LimitRefusal | undefined {
  if (typeof error !== 'object' || error === null || (error as { code?: unknown }).code !== 'EMAXLEN') return undefined;
  const message = String((error as { message?: unknown }).message);
  if (/child nodes/i.test(message)) return limitRefusal('mxscreen_mime_part_count_limit', limits.mimePartCountLimit, `content inspection: ${message}`);
  return limitRefusal('content inspection header section', inspectionHeaderSectionLimit(limits), `content inspection: ${message}`);
}

/** What applyContentLimits hands back. */
export interface LimitedContent {
  /** The message as it may be queued (headers cut to header_size_limit); ends when the input ends. */
  readonly output: Readable;
  /** Bytes read from the input so far (what message_size_limit counts). */
  received(): number;
  /** The first limit that refused the message, if any; final once `output` has ended. */
  refusal(): LimitRefusal | undefined;
  /** Limits that changed the message, once per limit; final once `output` has ended. */
  notices(): readonly LimitNotice[];
}

/**
 * Applies `limits` to `input` (the DATA stream, dot-unstuffed). `output` must be read to its
 * end; an error of `input` (the client went away) reaches `output`. Source: cleanup(8),
 * mime_state(3), postconf(5) header_size_limit, mime_nesting_limit, mime_boundary_length_limit.
 */
export function applyContentLimits(input: Readable, limits: ContentLimits): LimitedContent {
  const stage = new ContentLimitStage(limits);
  // pipeline(input, stage) as pipe() and finished(): an error or a premature close of
  // either side (already happened, too) destroys the other. pipeline() itself also aborts
  // an AbortController at every end, and the AbortError it builds (a stack trace) cost about
  // 1% of the CPU of a relayed message (profile of the smtp-source bench, issue 12).
  finished(input, (error) => {
    if (error) stage.destroy(error);
  });
  finished(stage, (error) => {
    if (error) input.destroy(error);
  });
  input.pipe(stage);
  return { output: stage, received: () => stage.received, refusal: () => stage.refusal, notices: () => stage.notices };
}

const LF = 0x0a;
const CR = 0x0d;
const SP = 0x20;
const HT = 0x09;
const DASH = 0x2d;
const COLON = 0x3a;
/** Not from the pool: a pooled buffer could share an ArrayBuffer with input (see sameBytes). */
const CR_BYTE = Buffer.alloc(1, CR);
const CRLF = Buffer.alloc(2, '\r\n');

/** An open container; a multipart keeps its boundary cut to mime_boundary_length_limit and its full length. */
type Container = { readonly kind: 'multipart'; readonly boundary: Buffer; readonly length: number; readonly digest: boolean } | { readonly kind: 'message' };

/** A delimiter line of a cut boundary: close or next part is known at its end (does it end in `--`?). */
interface PendingDelimiter {
  readonly container: Extract<Container, { kind: 'multipart' }>;
  readonly head: Buffer;
  /** Bytes of the line so far, without its LF. */
  length: number;
  /** Its last bytes so far (at most 3: a CR before the LF, then `--`). */
  tail: number[];
}

/** One header section: its field count, its Content-Type header, the type it has without one. */
interface Section {
  fields: number;
  contentType: string | undefined;
  readonly defaultMessage: boolean;
}

/** The logical header being read: bytes it may still keep, its Content-Type text if it is one. */
interface Field {
  readonly name: string;
  budget: number;
  readonly capture: Buffer[] | undefined;
  cut: boolean;
}

/** What the rest of the current line is: undecided (its head is being collected), passed, a header line. */
type LineMode = 'head' | 'pass' | 'field';

/** The type of an entity as far as structure goes (RFC 2045 §5, RFC 2046 §5). */
type EntityType = { readonly kind: 'multipart'; readonly boundary: string; readonly digest: boolean } | { readonly kind: 'message' } | { readonly kind: 'leaf' };

class ContentLimitStage extends Transform {
  readonly #limits: ContentLimits;
  /** Bytes of a line collected before it is classified (enough for any delimiter line). */
  readonly #headCap: number;
  received = 0;
  refusal: LimitRefusal | undefined;
  readonly notices: LimitNotice[] = [];
  #inHeader = true;
  readonly #stack: Container[] = [];
  #section: Section = { fields: 0, contentType: undefined, defaultMessage: false };
  #field: Field | undefined;
  #parts = 0;
  #mode: LineMode = 'head';
  #head: Buffer[] = [];
  #headLength = 0;
  /** Whether any byte of the current header line was kept (else its line end is dropped too). */
  #lineKept = false;
  /** A CR ended the last piece of a header line: line end or text, known with the next byte. */
  #pendingCR = false;
  /** Body with no multipart around: nothing can change any more, bytes go through as they are. */
  #passAll = false;
  #pendingDelimiter: PendingDelimiter | undefined;

  constructor(limits: ContentLimits) {
    super();
    this.#limits = limits;
    this.#headCap = Math.max(limits.mimeBoundaryLengthLimit + 4, 1000);
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    this.received += chunk.length;
    if (this.refusal) return done();
    if (this.#passAll) return done(null, chunk);
    const out: Buffer[] = [];
    let pos = 0;
    while (pos < chunk.length && !this.refusal) {
      if (this.#passAll) {
        out.push(chunk.subarray(pos));
        break;
      }
      const lf = chunk.indexOf(LF, pos);
      const lineEnd = lf < 0 ? chunk.length : lf + 1;
      if (this.#mode === 'head') {
        const take = Math.min(lineEnd, pos + (this.#headCap - this.#headLength));
        this.#head.push(chunk.subarray(pos, take));
        this.#headLength += take - pos;
        pos = take;
        const complete = lf >= 0 && take === lf + 1;
        if (!complete && this.#headLength < this.#headCap) break; // the line goes on in the next chunk
        this.#classify(this.#takeHead(), complete, out);
        continue;
      }
      this.#rest(chunk.subarray(pos, lineEnd), lf >= 0, out);
      pos = lineEnd;
    }
    if (this.refusal) return done();
    done(null, sameBytes(out, chunk) ? chunk : out.length === 0 ? undefined : Buffer.concat(out));
  }

  override _flush(done: TransformCallback): void {
    const out: Buffer[] = [];
    if (!this.refusal && this.#headLength > 0) this.#classify(this.#takeHead(), false, out);
    if (!this.refusal && this.#pendingCR) {
      this.#pendingCR = false;
      this.#fieldText(CR_BYTE, out);
    }
    if (!this.refusal) this.#endField();
    done(null, this.refusal || out.length === 0 ? undefined : Buffer.concat(out));
  }

  #takeHead(): Buffer {
    const head = this.#head.length === 1 ? this.#head[0]! : Buffer.concat(this.#head, this.#headLength);
    this.#head = [];
    this.#headLength = 0;
    return head;
  }

  /** Decides what the line starting with `head` is (`complete`: head is the whole line) and passes it on. */
  #classify(head: Buffer, complete: boolean, out: Buffer[]): void {
    if (this.#inHeader) {
      const kind = headerLineKind(head, complete);
      if (kind === 'blank') {
        this.#endField();
        this.#endSection(true);
        if (this.refusal) return;
        this.#mode = 'pass';
        this.#rest(head, complete, out);
        return;
      }
      if (kind === 'continuation' && this.#field) {
        const field = this.#field;
        // The fold costs one byte (cleanup(8) joins the lines with a newline). A continuation
        // line is kept when it fits (what is known of it: the whole line, or its first
        // #headCap bytes), else it is dropped whole: a cut one could be blanks only, which
        // some readers take for the end of the header section.
        const known = complete ? head.length - (head.length >= 2 && head[head.length - 2] === CR ? 2 : 1) : head.length;
        field.budget = field.budget >= 1 + known ? field.budget - 1 : 0;
        this.#lineKept = false;
        this.#mode = 'field';
        this.#rest(head, complete, out);
        return;
      }
      if (typeof kind === 'number') {
        this.#endField();
        this.#section.fields += 1;
        if (this.#section.fields > this.#limits.headerCountLimit) {
          this.#refuse(limitRefusal('mxscreen_header_count_limit', this.#limits.headerCountLimit, head.toString('latin1')));
          return;
        }
        const name = head.subarray(0, kind).toString('latin1').trimEnd();
        // Never cut inside the name and colon: the cut line must stay a header line.
        this.#field = { name, budget: Math.max(this.#limits.headerSizeLimit, kind + 1), capture: name.toLowerCase() === 'content-type' ? [] : undefined, cut: false };
        this.#lineKept = false;
        this.#mode = 'field';
        this.#rest(head, complete, out);
        return;
      }
      // Not a header line: the section ends here and the line is body (mime_state(3)).
      this.#endField();
      this.#endSection(false);
      if (this.refusal) return;
    }
    if (head.length > 2 && head[0] === DASH && head[1] === DASH) this.#delimiter(head);
    if (this.refusal) return;
    this.#mode = 'pass';
    this.#rest(head, complete, out);
  }

  /** A body line beginning `--`: a delimiter of one of the open multiparts, or text. */
  #delimiter(head: Buffer): void {
    for (let index = this.#stack.length - 1; index >= 0; index--) {
      const container = this.#stack[index]!;
      if (container.kind !== 'multipart') continue;
      const length = container.boundary.length;
      if (head.length < 2 + length || head.compare(container.boundary, 0, length, 2, 2 + length) !== 0) continue;
      this.#stack.length = index + 1; // containers opened inside this multipart end here
      if (container.length > length) {
        // A cut boundary: `--` right after the compared bytes says nothing (mime_state(3)
        // looks there and takes every close delimiter for a new part); the line end does.
        this.#pendingDelimiter = { container, head, length: 0, tail: [] };
        return;
      }
      this.#delimited(container, head, head.length >= 4 + length && head[2 + length] === DASH && head[3 + length] === DASH);
      return;
    }
  }

  /** After a delimiter line of `container`: it closes (its epilogue is body) or a part begins. */
  #delimited(container: Extract<Container, { kind: 'multipart' }>, head: Buffer, close: boolean): void {
    const index = this.#stack.indexOf(container);
    if (close) {
      this.#stack.length = index;
      return;
    }
    this.#parts += 1;
    if (this.#parts > this.#limits.mimePartCountLimit) {
      this.#refuse(limitRefusal('mxscreen_mime_part_count_limit', this.#limits.mimePartCountLimit, `MIME part ${this.#parts}: ${head.toString('latin1')}`));
      return;
    }
    this.#inHeader = true;
    this.#section = { fields: 0, contentType: undefined, defaultMessage: container.digest };
  }

  /** Follows a pending delimiter line through `bytes`; at its end decides what it was. */
  #followDelimiter(pending: PendingDelimiter, bytes: Buffer, endsLine: boolean): void {
    const text = endsLine ? bytes.subarray(0, bytes.length - 1) : bytes;
    pending.length += text.length;
    pending.tail = [...pending.tail, ...text.subarray(Math.max(0, text.length - 3))].slice(-3);
    if (!endsLine) return;
    this.#pendingDelimiter = undefined;
    const tail = pending.tail.at(-1) === CR ? pending.tail.slice(0, -1) : pending.tail;
    const length = pending.length - (pending.tail.at(-1) === CR ? 1 : 0);
    const close = length >= 4 + pending.container.length && tail.at(-1) === DASH && tail.at(-2) === DASH;
    this.#delimited(pending.container, pending.head, close);
  }

  /** The rest of the current line (`endsLine`: it ends with its LF), as the line's mode says. */
  #rest(bytes: Buffer, endsLine: boolean, out: Buffer[]): void {
    if (this.#mode === 'field') this.#fieldBytes(bytes, endsLine, out);
    else if (bytes.length > 0) out.push(bytes);
    if (this.#pendingDelimiter) this.#followDelimiter(this.#pendingDelimiter, bytes, endsLine);
    if (!endsLine || this.refusal) return;
    this.#mode = 'head';
    this.#passAll = !this.#inHeader && !this.#stack.some((container) => container.kind === 'multipart');
  }

  /** Bytes of a header line: text is kept within the field's budget; the line end goes out if any text did. */
  #fieldBytes(bytes: Buffer, endsLine: boolean, out: Buffer[]): void {
    let textEnd = endsLine ? bytes.length - 1 : bytes.length;
    let lineEnd: Buffer | undefined;
    if (this.#pendingCR) {
      this.#pendingCR = false;
      if (endsLine && textEnd === 0) lineEnd = CRLF; // the held CR and this LF end the line
      else this.#fieldText(CR_BYTE, out); // the held CR was text
    }
    if (lineEnd === undefined && endsLine) {
      if (textEnd > 0 && bytes[textEnd - 1] === CR) textEnd -= 1;
      lineEnd = bytes.subarray(textEnd);
    } else if (!endsLine && textEnd > 0 && bytes[textEnd - 1] === CR) {
      textEnd -= 1;
      this.#pendingCR = true;
    }
    if (textEnd > 0) this.#fieldText(bytes.subarray(0, textEnd), out);
    if (lineEnd !== undefined && this.#lineKept) out.push(lineEnd);
  }

  /** Header text: kept while the field's budget lasts, the excess discarded (header_size_limit). */
  #fieldText(text: Buffer, out: Buffer[]): void {
    const field = this.#field!;
    const keep = Math.min(text.length, field.budget);
    if (keep > 0) {
      const kept = text.subarray(0, keep);
      out.push(kept);
      field.capture?.push(kept);
      field.budget -= keep;
      this.#lineKept = true;
    }
    if (keep < text.length && !field.cut) {
      field.cut = true;
      this.#notice({ limit: 'header_size_limit', value: this.#limits.headerSizeLimit, where: `header ${field.name}` });
    }
  }

  #endField(): void {
    const field = this.#field;
    this.#field = undefined;
    if (field?.capture) this.#section.contentType = Buffer.concat(field.capture).toString('latin1');
  }

  /** The end of a header section (`blank`: at its blank line): a container opens, or the body begins. */
  #endSection(blank: boolean): void {
    this.#inHeader = false;
    const text = this.#section.contentType;
    const type: EntityType = text !== undefined ? entityType(text.slice(text.indexOf(':') + 1)) : { kind: this.#section.defaultMessage ? 'message' : 'leaf' };
    // message/rfc822 headers are looked for only after a blank line (mime_state(3)).
    if (type.kind === 'leaf' || (type.kind === 'message' && !blank)) return;
    if (this.#stack.length + 1 > this.#limits.mimeNestingLimit) {
      this.#refuse(limitRefusal('mime_nesting_limit', this.#limits.mimeNestingLimit, text ?? 'Content-Type: message/rfc822 (multipart/digest default)'));
      return;
    }
    if (type.kind === 'message') {
      this.#stack.push({ kind: 'message' });
      this.#inHeader = true;
      this.#section = { fields: 0, contentType: undefined, defaultMessage: false };
      return;
    }
    let boundary = Buffer.from(type.boundary, 'latin1');
    if (boundary.length > this.#limits.mimeBoundaryLengthLimit) {
      this.#notice({ limit: 'mime_boundary_length_limit', value: this.#limits.mimeBoundaryLengthLimit, where: `boundary "${type.boundary.slice(0, 40)}…"` });
      boundary = boundary.subarray(0, this.#limits.mimeBoundaryLengthLimit);
    }
    this.#stack.push({ kind: 'multipart', boundary, length: Buffer.byteLength(type.boundary, 'latin1'), digest: type.digest });
  }

  #refuse(refusal: LimitRefusal): void {
    this.refusal ??= refusal;
  }

  #notice(notice: LimitNotice): void {
    if (!this.notices.some((known) => known.limit === notice.limit)) this.notices.push({ ...notice, where: printable(notice.where) });
  }
}

/** True when `out` is `chunk` itself, piece by piece in order (then the chunk goes on unchanged). */
function sameBytes(out: readonly Buffer[], chunk: Buffer): boolean {
  let offset = chunk.byteOffset;
  for (const piece of out) {
    if (piece.length === 0) continue;
    if (piece.buffer !== chunk.buffer || piece.byteOffset !== offset) return false;
    offset += piece.length;
  }
  return offset === chunk.byteOffset + chunk.length;
}

/**
 * A line in a header section: `blank` (CRLF or LF alone), `continuation` (begins with a
 * blank), the index of the colon of a header field (a name of printable characters, then
 * optional blanks as in the obsolete `Name :`, RFC 5322 §4.5.3), or `other`.
 */
export function headerLineKind(head: Buffer, complete: boolean): 'blank' | 'continuation' | 'other' | number {
  if (complete && (head.length === 1 || (head.length === 2 && head[0] === CR))) return 'blank';
  if (head[0] === SP || head[0] === HT) return 'continuation';
  let index = 0;
  while (index < head.length && head[index]! > SP && head[index]! < 0x7f && head[index] !== COLON) index++;
  if (index === 0) return 'other';
  let colon = index;
  while (colon < head.length && (head[colon] === SP || head[colon] === HT)) colon++;
  return colon < head.length && head[colon] === COLON ? colon : 'other';
}

/**
 * What a Content-Type value (the text after the colon, folds included) says about structure:
 * multipart with its boundary parameter (quoted or token; none: a leaf, as mime_state(3)),
 * message/rfc822, or a leaf. Comments in parentheses are ignored. Source: RFC 2045 §5.1.
 */
export function entityType(value: string): EntityType {
  const [typeText = '', ...parameters] = splitOutsideQuotes(value.replace(/\r?\n/g, ''), ';');
  const type = typeText.replace(/\([^)]*\)/g, '').replace(/\s+/g, '').toLowerCase();
  if (type === 'message/rfc822') return { kind: 'message' };
  if (!type.startsWith('multipart/')) return { kind: 'leaf' };
  for (const parameter of parameters) {
    const equals = parameter.indexOf('=');
    if (equals < 0 || parameter.slice(0, equals).trim().toLowerCase() !== 'boundary') continue;
    const raw = parameter.slice(equals + 1).trim();
    const boundary = raw.startsWith('"') ? unquote(raw) : (raw.split(/[\s(]/)[0] ?? '');
    if (boundary !== '') return { kind: 'multipart', boundary, digest: type === 'multipart/digest' };
  }
  return { kind: 'leaf' };
}

function splitOutsideQuotes(text: string, separator: string): string[] {
  const parts: string[] = [];
  let start = 0;
  let quoted = false;
  for (let index = 0; index < text.length; index++) {
    const char = text[index];
    if (quoted && char === '\\') index++;
    else if (char === '"') quoted = !quoted;
    else if (!quoted && char === separator) {
      parts.push(text.slice(start, index));
      start = index + 1;
    }
  }
  parts.push(text.slice(start));
  return parts;
}

/** The content of a quoted-string (RFC 5322 §3.2.4) at the start of `text`, escapes removed. */
function unquote(text: string): string {
  let value = '';
  for (let index = 1; index < text.length; index++) {
    const char = text[index]!;
    if (char === '\\') value += text[++index] ?? '';
    else if (char === '"') break;
    else value += char;
  }
  return value;
}
