/*
 * address-verify — reject_unverified_recipient: recipients validated by asking the nexthop
 * (verify(8), ADDRESS_VERIFICATION_README), with no hand-kept list.
 *
 * Decides: the verify cache (LRU of mxscreen_verify_cache_size, saved as verify_cache.json
 * in the queue directory, read back at start); ages as verify(8): address_verify_positive_*
 * (expire 31d, refresh 7d) and _negative_* (3d, 3h), a refresh probing in the background;
 * a recipient without a valid result starts a probe and waits up to poll_count × poll_delay,
 * then `450 4.1.1 … unverified address: Address verification in progress`; at most
 * mxscreen_verify_probe_limit probes per nexthop, beyond that that 450 at once (a dictionary
 * attack becomes 450s, not probes); undeliverable: unverified_recipient_reject_code.
 * A reload applies new settings at once (setSettings): ages are judged by the current
 * times, and a smaller mxscreen_verify_cache_size drops the least recently used entries.
 * Several processes (mxscreen_workers > 1) share the file: each writes its own temporary
 * name (pid), and a save merges what the file holds (the newer result of an address wins),
 * so no worker overwrites another's results; a worker reads the others' at its start.
 * Leaves to others: the probe (verify-probe.ts); the metric (smtpd.ts countProbe).
 * Bugs: `unknown` probe results (4xx, timeouts) are not cached: the next RCPT probes again;
 * a running worker does not learn another's results (it probes for itself).
 */
import { readFileSync } from 'node:fs';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { LRUCache } from 'lru-cache';
import type { Clock } from '../clock.js';
import type { Logger } from '../ops/log.js';
import { DUNNO, rejectReply, type RestrictionResult } from './restriction.js';
import type { RestrictionCall } from './restriction.js';
import type { ProbeResult } from './verify-probe.js';
import type { VerifyAnswer } from './restriction-services.js';

export interface VerifySettings {
  /** ms */
  readonly positiveExpire: number;
  readonly positiveRefresh: number;
  readonly negativeExpire: number;
  readonly negativeRefresh: number;
  readonly pollCount: number;
  /** ms */
  readonly pollDelay: number;
  /** unverified_recipient_reject_code */
  readonly rejectCode: number;
  readonly cacheSize: number;
  /** Probes in flight per nexthop. */
  readonly probeLimit: number;
}

interface CacheEntry {
  readonly status: 'deliverable' | 'undeliverable';
  readonly text: string;
  /** When the probe finished, ms since the epoch. */
  readonly updated: number;
}

export interface VerifierDeps {
  /** Probes one recipient (verify-probe.ts probeRecipient, bound to the transport settings). */
  readonly probe: (recipient: string) => Promise<ProbeResult>;
  /** The nexthop label of a recipient (the per-nexthop limit). */
  readonly nexthopOf: (recipient: string) => string;
  readonly clock: Clock;
  readonly log: Logger;
  /** Called for every probe started or refused: result started | limited. */
  readonly countProbe?: (nexthop: string, result: 'started' | 'limited') => void;
  /** Directory of the cache file (queue_directory); undefined keeps the cache in memory. */
  readonly directory?: string;
}


const CACHE_FILE = 'verify_cache.json';

/** The verify(8) service of this process. */
export class RecipientVerifier {
  #settings: VerifySettings;
  #cache: LRUCache<string, CacheEntry>;
  readonly #inflight = new Map<string, Promise<void>>();
  readonly #perNexthop = new Map<string, number>();
  #saving = false;
  #dirty = false;

  constructor(
    settings: VerifySettings,
    readonly deps: VerifierDeps,
  ) {
    this.#settings = settings;
    this.#cache = new LRUCache({ max: Math.max(1, settings.cacheSize) });
    this.#load();
  }

  /** The settings in force (the latest setSettings). */
  get settings(): VerifySettings {
    return this.#settings;
  }

  /**
   * Reload: from now on every answer follows `settings`. A new mxscreen_verify_cache_size
   * keeps the most recently used entries that fit; probes in flight finish as they are.
   */
  setSettings(settings: VerifySettings): void {
    const previous = this.#settings;
    this.#settings = settings;
    if (Math.max(1, settings.cacheSize) === Math.max(1, previous.cacheSize)) return;
    const resized = new LRUCache<string, CacheEntry>({ max: Math.max(1, settings.cacheSize) });
    // entries() runs most recently used first: insert oldest first so the order is kept.
    for (const [key, entry] of [...this.#cache.entries()].reverse()) resized.set(key, entry);
    this.#cache = resized;
    this.#save();
  }

  /** Probes started and not finished, over all nexthops. */
  get probesInFlight(): number {
    return this.#inflight.size;
  }

  /**
   * What is known about `address` (lower-cased key), probing and waiting as the file head
   * says. Never rejects.
   */
  async verify(address: string): Promise<VerifyAnswer> {
    const key = address.toLowerCase();
    const now = this.deps.clock.now();
    const entry = this.#cache.get(key);
    if (entry !== undefined) {
      const positive = entry.status === 'deliverable';
      const age = now - entry.updated;
      if (age < (positive ? this.#settings.positiveExpire : this.#settings.negativeExpire)) {
        if (age >= (positive ? this.#settings.positiveRefresh : this.#settings.negativeRefresh)) this.#start(key);
        return positive ? { kind: 'deliverable' } : { kind: 'undeliverable', text: entry.text };
      }
    }
    const probe = this.#start(key);
    if (probe === undefined) return { kind: 'in-progress' };
    const waitMs = this.#settings.pollCount * this.#settings.pollDelay;
    const finished = await new Promise<boolean>((resolve) => {
      const timer = this.deps.clock.setTimer(waitMs, () => resolve(false));
      void probe.then(() => {
        timer.cancel();
        resolve(true);
      });
    });
    const fresh = finished ? this.#cache.get(key) : undefined;
    if (fresh === undefined || fresh.updated < now) return { kind: 'in-progress' };
    return fresh.status === 'deliverable' ? { kind: 'deliverable' } : { kind: 'undeliverable', text: fresh.text };
  }

  /** Starts a probe of `key` unless one runs; undefined when the nexthop is at its limit. */
  #start(key: string): Promise<void> | undefined {
    const running = this.#inflight.get(key);
    if (running) return running;
    const nexthop = this.deps.nexthopOf(key);
    const count = this.#perNexthop.get(nexthop) ?? 0;
    if (count >= this.#settings.probeLimit) {
      this.deps.countProbe?.(nexthop, 'limited');
      return undefined;
    }
    this.#perNexthop.set(nexthop, count + 1);
    this.deps.countProbe?.(nexthop, 'started');
    const probe = this.deps
      .probe(key)
      .then((result) => {
        this.deps.log.info({ event: 'address verify', to: key, nexthop, status: result.status }, `<${key}>: address verification: ${result.status}: ${result.text}`);
        if (result.status === 'unknown') return;
        this.#cache.set(key, { status: result.status, text: result.text, updated: this.deps.clock.now() });
        this.#save();
      })
      .catch(() => undefined)
      .finally(() => {
        this.#inflight.delete(key);
        const left = (this.#perNexthop.get(nexthop) ?? 1) - 1;
        if (left > 0) this.#perNexthop.set(nexthop, left);
        else this.#perNexthop.delete(nexthop);
      });
    this.#inflight.set(key, probe);
    return probe;
  }

  #load(): void {
    if (this.deps.directory === undefined) return;
    let text: string;
    try {
      text = readFileSync(join(this.deps.directory, CACHE_FILE), 'utf8');
    } catch {
      return; // no cache yet
    }
    try {
      for (const [key, entry] of this.#entries(text).slice(-this.#settings.cacheSize)) this.#cache.set(key, entry);
    } catch (err) {
      this.deps.log.warn({ event: 'address verify', err }, `${CACHE_FILE}: unreadable, starting with an empty verify cache`);
    }
  }

  /** The valid entries of a saved cache `text`, least recently used first. Throws on bad JSON. */
  #entries(text: string): [string, CacheEntry][] {
    const entries = JSON.parse(text) as [string, CacheEntry][];
    return entries.filter(([key, entry]) => typeof key === 'string' && (entry.status === 'deliverable' || entry.status === 'undeliverable') && typeof entry.updated === 'number');
  }

  /** Merges the saved file, writes the cache to this process's temporary name and renames it (one write at a time). */
  #save(): void {
    const directory = this.deps.directory;
    if (directory === undefined) return;
    this.#dirty = true;
    if (this.#saving) return;
    this.#saving = true;
    this.#dirty = false;
    const file = join(directory, CACHE_FILE);
    const temporary = `${file}.${process.pid}.tmp`;
    void readFile(file, 'utf8')
      .then((text) => this.#entries(text))
      .catch((): [string, CacheEntry][] => []) // none yet, or unreadable: ours replaces it
      .then((saved) => {
        // Another worker's newer result of an address stays; ours are the most recent.
        const merged = new Map(saved);
        for (const [key, entry] of [...this.#cache.entries()].reverse()) {
          const theirs = merged.get(key);
          if (theirs !== undefined && theirs.updated > entry.updated) continue;
          merged.delete(key);
          merged.set(key, entry);
        }
        return writeFile(temporary, JSON.stringify([...merged].slice(-Math.max(1, this.#settings.cacheSize))));
      })
      .then(() => rename(temporary, file))
      .catch((err: unknown) => this.deps.log.warn({ event: 'address verify', err }, `cannot save ${file}`))
      .finally(() => {
        this.#saving = false;
        if (this.#dirty) this.#save();
      });
  }

  /** Resolves when no cache write is pending (tests, shutdown). Bounded: 100 × 10 ms. */
  async flushed(): Promise<void> {
    for (let i = 0; i < 100 && this.#saving; i++) await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** The reject_unverified_recipient restriction (see file head). */
export async function rejectUnverifiedRecipient(call: RestrictionCall): Promise<RestrictionResult> {
  const verifier = call.env.verifier;
  const recipient = call.request.recipient;
  if (verifier === undefined || recipient === undefined || recipient.domain === '' || recipient.domain.startsWith('[')) return DUNNO;
  const answer = await verifier.verify(recipient.key);
  const by = call.restriction.written;
  switch (answer.kind) {
    case 'deliverable':
      return DUNNO;
    case 'undeliverable': {
      const code = verifier.settings.rejectCode;
      return { kind: 'reject', by, reply: rejectReply(code, code >= 500 ? '5.1.1' : '4.1.1', recipient.address, 'Recipient address', `undeliverable address: ${answer.text}`) };
    }
    case 'in-progress':
      return { kind: 'reject', by, reply: rejectReply(450, '4.1.1', recipient.address, 'Recipient address', 'unverified address: Address verification in progress') };
    default: {
      const never: never = answer;
      throw new Error(`unhandled verify answer ${JSON.stringify(never)}`);
    }
  }
}
