/*
 * cache-map — postscreen_cache_map: which store holds the verdict cache, and the Redis
 * client file (`redis:/path/postscreen_cache.cf`) read in memcache_table(5)'s style.
 *
 * Decides: `redis:FILE` selects the shared Redis store; any other map type (btree:, lmdb:,
 * memcache:, proxy:…) keeps the embedded in-process cache, as before. The file has main.cf
 * syntax (readlline(3) logical lines, `#` comments, blank lines, `name = value`), with the
 * names `url` (redis://[user:password@]host[:port][/db] or rediss:// for TLS; required),
 * `key_format` (default `postscreen:%s`, exactly one %s, %% for a %), `timeout` (the read
 * deadline, default 50ms, Postfix time syntax, a bare number is seconds, at most 10s) and
 * `connect_timeout` (default 1s, at most 60s). Each unknown name, repeated name or bad value is
 * a problem at file:line. A problem never quotes the url: it may hold a password.
 * Leaves to others: using the settings (redis-cache-backend.ts), when the file is read
 * (screen-settings.ts: at start, check-config and every reload).
 * Bugs: no unix-domain sockets, no url query options, no Sentinel or Cluster.
 */
import { readFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import type { ConfigProblem } from '../errors.js';
import { readKind, type ParameterContext } from '../config/parameter-kind.js';
import { readLogicalLines } from '../config/logical-line.js';

/** The Redis client settings of a `redis:` cache map (units in the names). */
export interface RedisCacheSettings {
  /** The client file, absolute. */
  readonly file: string;
  /** `url`, as written (holds the password, if any: never log it; see redactedUrl). */
  readonly url: string;
  /** `key_format`: the Redis key of client IP `ip` is keyFormat with %s replaced. */
  readonly keyFormat: string;
  /** `timeout`, ms: a read that takes longer is a cache miss. */
  readonly timeoutMs: number;
  /** `connect_timeout`, ms: one connection attempt's limit. */
  readonly connectTimeoutMs: number;
}

/** Where the verdict cache lives: the embedded in-process cache, or shared on Redis with it as the near cache. */
export type CacheMap = { readonly kind: 'embedded' } | { readonly kind: 'redis'; readonly redis: RedisCacheSettings };

const NAMES = ['url', 'key_format', 'timeout', 'connect_timeout'] as const;
type Name = (typeof NAMES)[number];

const DEFAULTS = { key_format: 'postscreen:%s', timeout: '50ms', connect_timeout: '1s' } as const;
const MAX_TIMEOUT_MS = 10_000;
const MAX_CONNECT_TIMEOUT_MS = 60_000;

/**
 * postscreen_cache_map `value` (already expanded): `redis:FILE` reads FILE (relative to
 * `directory`); anything else is the embedded cache. Problems are at the file's lines, or
 * at `setting` (where main.cf set the parameter) when the file cannot be read.
 */
export function readCacheMap(value: string, directory: string, setting: { readonly file: string; readonly line: number }): { map: CacheMap; problems: ConfigProblem[] } {
  const match = /^redis:(.+)$/.exec(value.trim());
  if (match === null) return { map: { kind: 'embedded' }, problems: [] };
  const file = isAbsolute(match[1]!) ? match[1]! : resolve(directory, match[1]!);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    return { map: { kind: 'embedded' }, problems: [{ ...setting, message: `postscreen_cache_map: cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? String(error)}` }] };
  }
  const parsed = parseRedisCacheFile(text, file);
  return parsed.settings ? { map: { kind: 'redis', redis: parsed.settings }, problems: parsed.problems } : { map: { kind: 'embedded' }, problems: parsed.problems };
}

/** Parses the client file's `text` (named `file` in problems). `settings` is absent when there is any problem. */
export function parseRedisCacheFile(text: string, file: string): { settings?: RedisCacheSettings; problems: ConfigProblem[] } {
  const problems: ConfigProblem[] = [];
  const { lines, orphans } = readLogicalLines(text);
  for (const orphan of orphans) problems.push({ file, line: orphan.line, message: 'continuation line without a setting before it' });
  const seen = new Map<Name, { value: string; line: number }>();
  for (const { text: lineText, line } of lines) {
    const setting = /^([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$/.exec(lineText);
    if (setting === null) {
      problems.push({ file, line, message: 'expected "name = value"' });
      continue;
    }
    const name = setting[1]!;
    if (!(NAMES as readonly string[]).includes(name)) {
      problems.push({ file, line, message: `unknown name "${name}" (expected ${NAMES.join(', ')})` });
      continue;
    }
    if (seen.has(name as Name)) {
      problems.push({ file, line, message: `"${name}" is set twice (first at line ${seen.get(name as Name)!.line})` });
      continue;
    }
    seen.set(name as Name, { value: setting[2]!.trim(), line });
  }
  const at = (name: Name) => seen.get(name)?.line ?? 0;
  const url = seen.get('url');
  if (url === undefined) problems.push({ file, line: 0, message: 'url is required (url = redis://host:port/db)' });
  else {
    const problem = urlProblem(url.value);
    if (problem !== undefined) problems.push({ file, line: url.line, message: `url: ${problem}` });
  }
  const keyFormat = seen.get('key_format')?.value ?? DEFAULTS.key_format;
  const formatProblem = keyFormatProblem(keyFormat);
  if (formatProblem !== undefined) problems.push({ file, line: at('key_format'), message: `key_format: ${formatProblem}` });
  const timeoutMs = readDuration(seen.get('timeout')?.value ?? DEFAULTS.timeout, MAX_TIMEOUT_MS, (message) => problems.push({ file, line: at('timeout'), message: `timeout: ${message}` }));
  const connectTimeoutMs = readDuration(seen.get('connect_timeout')?.value ?? DEFAULTS.connect_timeout, MAX_CONNECT_TIMEOUT_MS, (message) => problems.push({ file, line: at('connect_timeout'), message: `connect_timeout: ${message}` }));
  // By line; a problem of the whole file (line 0) last.
  problems.sort((a, b) => (a.line || Infinity) - (b.line || Infinity));
  if (problems.length > 0 || url === undefined) return { problems };
  return { settings: { file, url: url.value, keyFormat, timeoutMs, connectTimeoutMs }, problems };
}

/** What is wrong with a Redis url, never quoting it (it may hold a password); undefined when fine. */
function urlProblem(text: string): string | undefined {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return 'not a URL (expected redis://[user:password@]host[:port][/db] or rediss://…; the value is not shown, it may hold a password)';
  }
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') return `unsupported scheme "${url.protocol.replace(/:$/, '')}" (expected redis or rediss)`;
  if (url.hostname === '') return 'no host';
  if (url.search !== '' || url.hash !== '') return 'query and fragment options are not supported';
  const path = url.pathname.replace(/^\//, '');
  if (path !== '' && !/^\d{1,5}$/.test(path)) return 'the path must be a database number (/0, /1, …)';
  return undefined;
}

/** What is wrong with a key_format; undefined when it has one %s and otherwise only %%. */
function keyFormatProblem(format: string): string | undefined {
  const directives = [...format.matchAll(/%(.)/gs)].map((match) => match[1]);
  const unknown = directives.find((directive) => directive !== 's' && directive !== '%');
  if (unknown !== undefined || /%$/.test(format.replace(/%%/g, ''))) return `"%${unknown ?? ''}" is not supported (only %s, the client address, and %%)`;
  if (directives.filter((directive) => directive === 's').length !== 1) return `"${format}" must contain %s exactly once`;
  if (/\s/.test(format)) return `"${format}" must not contain white space`;
  return undefined;
}

const NO_TABLES: ParameterContext = { openTable: () => undefined, readPatternFile: () => undefined };

/** A Postfix time value (bare number = seconds) in ms, 1 ms … `maxMs`; reports through `report`. */
function readDuration(text: string, maxMs: number, report: (message: string) => void): number {
  const read = readKind({ name: 'timeout', kind: 'time', default: '', unit: 's', doc: '' }, text, NO_TABLES);
  const ms = read.value as number;
  if (read.problems.length > 0) read.problems.forEach(report);
  else if (ms < 1 || ms > maxMs) report(`${text} is out of range (1ms to ${maxMs / 1000}s)`);
  return ms;
}

/** The Redis key of client `ip` under `keyFormat` (%s → ip, %% → %). */
export function cacheKey(keyFormat: string, ip: string): string {
  return keyFormat.replace(/%([%s])/g, (_match, directive: string) => (directive === 's' ? ip : '%'));
}

/** `url` without its user and password, for logs: `redis://host:port/db`. */
export function redactedUrl(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.protocol}//${parsed.host}${parsed.pathname === '/' ? '' : parsed.pathname}`;
  } catch {
    return '(bad url)';
  }
}
