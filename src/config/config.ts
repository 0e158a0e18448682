/*
 * config — loads main.cf into a validated, typed, immutable Config.
 *
 * Decides: names are looked up in the catalogue (old names are aliases; anything else is
 * "unknown parameter" with file:line), values are $-expanded against configured values
 * then catalogue defaults, every parameter is read as its kind and checked EAGERLY (tables
 * opened, with their own file:line problems) so that check-config lists every problem at
 * once; an empty myhostname is os.hostname(); relative paths (tables, queue_directory,
 * data_directory, TLS files) resolve against the config file's directory; a problem in a
 * default value is reported at `main.cf:0` naming the default.
 * Leaves to others: syntax (main-cf.ts), expansion (expansion.ts), kinds
 * (parameter-kind.ts), per-parameter checks (parameter-checks.ts), tables (tables/).
 * Bugs: tables are read once per load; watching them and SIGHUP reloads belong to main.ts
 * (configSources gives the files to watch).
 */
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname, isAbsolute, resolve } from 'node:path';
import { CATALOGUE, type ParameterName, type ParameterSpec } from './catalogue.js';
import type { Config, ParameterValue } from './value.js';
import { ConfigError, type ConfigProblem } from '../errors.js';
import type { LookupTable } from '../tables/lookup-table.js';
import { openTable, tableSourceFile, tableTypeOf } from '../tables/open-table.js';
import { parseMainCf, type MainCfEntry } from './main-cf.js';
import { ParameterExpander } from './expansion.js';
import { readKind, splitList, type ParameterContext } from './parameter-kind.js';
import { PARAMETER_CHECKS } from './parameter-checks.js';
import { readLogicalLines } from './logical-line.js';

/** Parameters holding a file or directory name: their value is resolved to an absolute path. */
export const PATH_PARAMETERS = ['queue_directory', 'data_directory', 'smtpd_tls_cert_file', 'smtpd_tls_key_file'] as const satisfies readonly ParameterName[];

const SPECS: readonly ParameterSpec[] = CATALOGUE;
const BY_NAME = new Map<string, ParameterSpec>();
for (const spec of SPECS) {
  BY_NAME.set(spec.name, spec);
  for (const alias of spec.aliases ?? []) BY_NAME.set(alias, spec);
}

class LoadedConfig implements Config {
  constructor(
    readonly file: string,
    readonly directory: string,
    private readonly values: ReadonlyMap<string, unknown>,
    private readonly settings: ReadonlyMap<string, MainCfEntry>,
    private readonly tables: ReadonlyMap<string, LookupTable>,
    readonly sources: readonly string[],
    readonly classes: ReadonlyMap<string, RestrictionClass>,
  ) {}

  get<N extends ParameterName>(name: N): ParameterValue<N> {
    if (!this.values.has(name)) throw new Error(`BUG: parameter ${name} is not in the catalogue`);
    return this.values.get(name) as ParameterValue<N>;
  }

  where(name: ParameterName): string {
    const entry = this.settings.get(name);
    return entry === undefined ? 'default' : `${entry.file}:${entry.line}`;
  }

  resolvePath(path: string): string {
    return isAbsolute(path) ? path : resolve(this.directory, path);
  }

  table(spec: string): LookupTable {
    return this.tables.get(spec) ?? openTable(spec, this.directory);
  }
}

/**
 * Builds a Config from main.cf `text`; `file` names it in problems and Config.file,
 * `directory` is where relative paths resolve. Throws ConfigError (ERR_CONFIG) listing
 * every problem found, each `file:line: message`.
 */
export function configFromText(text: string, options: { file: string; directory: string }): Config {
  const { config, problems } = buildConfig(text, options.file, options.directory);
  if (problems.length > 0 || config === undefined) throw new ConfigError(problems);
  return config;
}

/**
 * Reads main.cf at `file` (relative to the working directory) and builds its Config.
 * Throws ConfigError (ERR_CONFIG) listing every problem, or `file:0` when unreadable.
 */
export function loadConfig(file: string): Config {
  const absolute = resolve(file);
  const text = readMainCf(absolute);
  if (typeof text !== 'string') throw new ConfigError([text]);
  return configFromText(text, { file: absolute, directory: dirname(absolute) });
}

/** Every problem of main.cf at `file` and the tables it names (what check-config prints); [] when valid. */
export function checkConfig(file: string): ConfigProblem[] {
  const absolute = resolve(file);
  const text = readMainCf(absolute);
  if (typeof text !== 'string') return [text];
  return buildConfig(text, absolute, dirname(absolute)).problems;
}

/**
 * The table `spec` as `config` opened it at load (one instance per spec), for parameters
 * of kind `list` whose elements may be tables (postscreen_access_list). Opens it now
 * (relative to config.directory) when the load did not; throws ConfigError then on error.
 */
export function configuredTable(config: Config, spec: string): LookupTable {
  return config instanceof LoadedConfig ? config.table(spec) : openTable(spec, config.directory);
}

/** Where main.cf set parameter `name`, as a ConfigProblem location (line 0 of config.file for a default). */
export function settingAt(config: Config, name: ParameterName): { readonly file: string; readonly line: number } {
  const match = /^(.*):(\d+)$/.exec(config.where(name));
  return match ? { file: match[1]!, line: Number(match[2]) } : { file: config.file, line: 0 };
}

/** A problem with parameter `name` at its setting (settingAt), the message prefixed `name: `; for the stages' own checks. */
export function problemAt(config: Config, name: ParameterName, message: string): ConfigProblem {
  return { ...settingAt(config, name), message: `${name}: ${message}` };
}

/** A restriction class (smtpd_restriction_classes): its name, its expanded list words and where it was set. */
export interface RestrictionClass {
  readonly name: string;
  readonly words: readonly string[];
  readonly file: string;
  readonly line: number;
}

/** The restriction classes `config` defines (postconf(5) smtpd_restriction_classes), by name. */
export function restrictionClasses(config: Config): ReadonlyMap<string, RestrictionClass> {
  return config instanceof LoadedConfig ? config.classes : new Map();
}

/** Files `config` was read from (main.cf and every table file), to watch for changes. */
export function configSources(config: Config): readonly string[] {
  return config instanceof LoadedConfig ? config.sources : [config.file];
}

function readMainCf(file: string): string | ConfigProblem {
  try {
    return readFileSync(file, 'utf8');
  } catch (error) {
    return { file, line: 0, message: `cannot read configuration file: ${(error as NodeJS.ErrnoException).code ?? String(error)}` };
  }
}

/** What one load collects as it reads: its problems, the tables it opened (null: failed) and the files read. */
interface LoadState {
  readonly file: string;
  readonly directory: string;
  readonly problems: ConfigProblem[];
  readonly tables: Map<string, LookupTable | null>;
  readonly sources: Set<string>;
}

function buildConfig(text: string, file: string, directory: string): { config?: LoadedConfig; problems: ConfigProblem[] } {
  const parsed = parseMainCf(text, file);
  const load: LoadState = { file, directory, problems: [...parsed.problems], tables: new Map(), sources: new Set([file]) };
  const { settings, others } = settingsByName(parsed.entries);
  const classEntries = new Map<string, MainCfEntry>();
  const expander = new ParameterExpander(
    (name) => settings.get(name)?.value ?? classEntries.get(name)?.value ?? BY_NAME.get(name)?.default,
    (name, value) => (name === 'myhostname' && value === '' ? hostname() : name === 'config_directory' && value === '' ? directory : value),
  );
  // A name listed in smtpd_restriction_classes is a restriction class (postconf(5)); any
  // other name that is not in the catalogue is an error.
  const classNames = new Set(splitList(expander.value('smtpd_restriction_classes').value));
  for (const entry of others) {
    if (classNames.has(entry.name)) classEntries.set(entry.name, entry);
    else load.problems.push({ file, line: entry.line, message: `unknown parameter: ${entry.name}` });
  }
  const values = new Map<string, unknown>();
  const withProblems = new Set<string>();
  for (const spec of SPECS) values.set(spec.name, readParameter(load, spec, settings.get(spec.name), expander, withProblems));
  const classes = readRestrictionClasses(load, classNames, classEntries, settings.get('smtpd_restriction_classes')?.line ?? 0, expander);
  if (load.problems.length > 0) return { problems: orderProblems(load.problems, file) };
  const opened = new Map<string, LookupTable>();
  for (const [tableSpec, table] of load.tables) if (table !== null) opened.set(tableSpec, table);
  return { config: new LoadedConfig(file, directory, values, settings, opened, [...load.sources], classes), problems: [] };
}

/** The last setting of each catalogue parameter (by its name, aliases included), and the entries of other names. */
function settingsByName(entries: readonly MainCfEntry[]): { settings: Map<string, MainCfEntry>; others: MainCfEntry[] } {
  const settings = new Map<string, MainCfEntry>();
  const others: MainCfEntry[] = [];
  for (const entry of entries) {
    const spec = BY_NAME.get(entry.name);
    if (spec === undefined) {
      others.push(entry);
      continue;
    }
    const earlier = settings.get(spec.name);
    if (earlier === undefined || earlier.line < entry.line) settings.set(spec.name, entry);
  }
  return { settings, others };
}

/**
 * The value of parameter `spec`: expanded, read as its kind, a path made absolute, then its
 * own check; every problem is reported at the setting (`withProblems` collects the names
 * that had one, so a default that copies one is not reported again).
 */
function readParameter(load: LoadState, spec: ParameterSpec, entry: MainCfEntry | undefined, expander: ParameterExpander, withProblems: Set<string>): unknown {
  const origin = { file: load.file, line: entry?.line ?? 0 };
  const label = entry === undefined ? `${spec.name} (default "${spec.default}")` : spec.name;
  const report = (message: string): void => {
    load.problems.push({ ...origin, message: `${label}: ${message}` });
  };
  const context: ParameterContext = {
    openTable: (tableSpec) => loadTable(load, tableSpec, origin),
    readPatternFile(path) {
      try {
        const words = readLogicalLines(readFileSync(path, 'utf8')).lines.flatMap((line) => splitList(line.text));
        load.sources.add(path);
        return words;
      } catch (error) {
        report(`cannot read pattern file ${path}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
        return undefined;
      }
    },
  };
  const expanded = expander.value(spec.name);
  if (expanded.problem !== undefined) report(expanded.problem);
  const read = readKind(spec, expanded.value, context);
  // A value built from a parameter with a problem is not judged again: that one is reported.
  // A default that copies a parameter with a problem ($relay_domains) is not reported again.
  const copiesBroken = entry === undefined && [...spec.default.matchAll(/\$\{?(\w+)/g)].some((match) => withProblems.has(match[1]!));
  if (expanded.broken !== true && !copiesBroken) for (const message of read.problems) report(message);
  if (read.problems.length > 0 || expanded.problem !== undefined) withProblems.add(spec.name);
  let value: unknown = read.value;
  if ((PATH_PARAMETERS as readonly string[]).includes(spec.name) && typeof value === 'string' && value !== '') {
    value = isAbsolute(value) ? value : resolve(load.directory, value);
  }
  if (read.problems.length === 0 && expanded.problem === undefined && expanded.broken !== true) {
    for (const message of PARAMETER_CHECKS[spec.name as ParameterName]?.(value) ?? []) report(message);
  }
  return value;
}

/**
 * The restriction classes named in smtpd_restriction_classes (set at `classesLine`): each
 * must be defined; its words are expanded and the tables among them opened now.
 */
function readRestrictionClasses(load: LoadState, names: ReadonlySet<string>, entries: ReadonlyMap<string, MainCfEntry>, classesLine: number, expander: ParameterExpander): Map<string, RestrictionClass> {
  const classes = new Map<string, RestrictionClass>();
  for (const name of names) {
    const entry = entries.get(name);
    const origin = { file: load.file, line: entry?.line ?? classesLine };
    if (entry === undefined) {
      load.problems.push({ ...origin, message: `smtpd_restriction_classes: restriction class "${name}" is not defined` });
      continue;
    }
    const expanded = expander.value(name);
    if (expanded.problem !== undefined) load.problems.push({ ...origin, message: `${name}: ${expanded.problem}` });
    const words = splitList(expanded.value);
    for (const word of words) if (tableTypeOf(word) !== undefined) loadTable(load, word, origin);
    classes.set(name, { name, words, file: load.file, line: origin.line });
  }
  return classes;
}

/** The table `spec`, opened once per load; its problems are reported once and it is then undefined. */
function loadTable(load: LoadState, spec: string, origin: { file: string; line: number }): LookupTable | undefined {
  const known = load.tables.get(spec);
  if (known !== undefined) return known ?? undefined;
  try {
    const table = openTable(spec, load.directory, origin);
    load.tables.set(spec, table);
    const source = tableSourceFile(spec, load.directory);
    if (source !== undefined) load.sources.add(source);
    return table;
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    load.problems.push(...error.problems);
    load.tables.set(spec, null);
    return undefined;
  }
}

/** main.cf problems first, by line; then table files' problems in the order found. */
function orderProblems(problems: ConfigProblem[], file: string): ConfigProblem[] {
  const own = problems.filter((problem) => problem.file === file).sort((a, b) => a.line - b.line);
  return [...own, ...problems.filter((problem) => problem.file !== file)];
}
