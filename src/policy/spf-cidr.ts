/*
 * spf-cidr — `mxscreen spf-cidr DOMAIN…`: the networks a domain's SPF record authorizes,
 * as a cidr: table (`a.b.c.d/n OK`), so that "accept mail only from my external provider"
 * (seed 000's cron script: dig TXT | grep ip4: | sed 's/$/ OK/') is one line of
 * configuration: `smtpd_client_restrictions = check_client_access cidr:provider.cidr, reject`.
 *
 * Decides: the `v=spf1` TXT record of each domain (RFC 7208 §4.5: exactly one, else an
 * error); `ip4:` and `ip6:` ranges as written (a bare address gets /32 or /128); `a` and
 * `mx` (with optional :domain and /cidr) resolved to their addresses; `include:` and
 * `redirect=` followed; SPF's limits: at most 10 mechanisms that cost a DNS lookup and
 * at most 2 lookups that find nothing (RFC 7208 §4.6.4); macros (`%{…}`), `exists` and
 * `ptr` cannot be listed as networks and are reported. Output sorted, without duplicates.
 * Leaves to others: TXT and address lookups (the injected DnsResolver).
 * Bugs: the mx mechanism lists at most 10 MX hosts, as RFC 7208 §4.6.4 allows.
 */
import { isIP } from 'node:net';
import { DnsError, type DnsResolver } from '../dns/resolver.js';

export interface SpfCidrResult {
  /** `network/len OK` lines, sorted. */
  readonly lines: readonly string[];
  /** What could not be turned into networks, per domain. */
  readonly problems: readonly string[];
}

const LOOKUP_LIMIT = 10;
const VOID_LIMIT = 2;
const MX_LIMIT = 10;

interface Walk {
  lookups: number;
  voids: number;
  readonly networks: Set<string>;
  readonly problems: string[];
}

function isVoid(error: unknown): boolean {
  return error instanceof DnsError && (error.kind === 'nxdomain' || error.kind === 'nodata');
}

function network(address: string, length: string | undefined): string {
  const family = isIP(address);
  const bits = length ?? (family === 6 ? '128' : '32');
  return `${address}/${bits}`;
}

/** Networks of `domains`' SPF records (see file head). Never rejects. */
export async function spfCidrTable(domains: readonly string[], resolver: DnsResolver): Promise<SpfCidrResult> {
  const networks = new Set<string>();
  const problems: string[] = [];
  for (const domain of domains) {
    const walk: Walk = { lookups: 0, voids: 0, networks, problems };
    await visit(domain.toLowerCase().replace(/\.$/, ''), walk, resolver, 0);
  }
  const lines = [...networks].sort().map((net) => `${net} OK`);
  return { lines, problems };
}

async function count(walk: Walk, what: string): Promise<boolean> {
  walk.lookups++;
  if (walk.lookups > LOOKUP_LIMIT) {
    walk.problems.push(`${what}: more than ${LOOKUP_LIMIT} DNS lookups (RFC 7208 §4.6.4), stopped`);
    return false;
  }
  return true;
}

async function visit(domain: string, walk: Walk, resolver: DnsResolver, depth: number): Promise<void> {
  if (depth > LOOKUP_LIMIT) return;
  let records: string[][];
  try {
    records = await resolver.resolveTxt(domain);
  } catch (error) {
    if (isVoid(error) && ++walk.voids <= VOID_LIMIT) walk.problems.push(`${domain}: no SPF record`);
    else walk.problems.push(`${domain}: TXT lookup failed (${error instanceof DnsError ? error.kind : String(error)})`);
    return;
  }
  const spf = records.map((parts) => parts.join('')).filter((text) => /^v=spf1(\s|$)/i.test(text));
  if (spf.length !== 1) {
    walk.problems.push(`${domain}: ${spf.length === 0 ? 'no' : 'more than one'} v=spf1 record`);
    return;
  }
  let redirect: string | undefined;
  for (const term of spf[0]!.split(/\s+/).slice(1)) {
    if (term === '') continue;
    const mechanism = /^[+~?-]?([a-z0-9]+)(?:[:=]([^/]*))?(?:\/(\d+))?(?:\/\/(\d+))?$/i.exec(term);
    if (!mechanism) {
      walk.problems.push(`${domain}: cannot read "${term}"`);
      continue;
    }
    if (term.startsWith('-') || term.startsWith('~') || term.startsWith('?')) continue; // not authorized
    const name = mechanism[1]!.toLowerCase();
    const argument = mechanism[2];
    if (argument?.includes('%')) {
      walk.problems.push(`${domain}: "${term}" uses macros, not listed`);
      continue;
    }
    switch (name) {
      case 'ip4':
      case 'ip6': {
        const address = argument ?? '';
        if (isIP(address) !== (name === 'ip4' ? 4 : 6)) walk.problems.push(`${domain}: bad ${name} "${term}"`);
        else walk.networks.add(network(address, term.includes('/') ? term.slice(term.lastIndexOf('/') + 1) : undefined));
        break;
      }
      case 'a':
      case 'mx': {
        if (!(await count(walk, domain))) return;
        const target = (argument || domain).toLowerCase();
        const hosts: string[] = [];
        if (name === 'mx') {
          try {
            hosts.push(...(await resolver.resolveMx(target)).slice(0, MX_LIMIT).map((mx) => mx.exchange));
          } catch (error) {
            if (isVoid(error)) walk.voids++;
          }
        } else {
          hosts.push(target);
        }
        for (const host of hosts) {
          for (const family of [4, 6] as const) {
            try {
              const answers = family === 4 ? await resolver.resolve4(host) : await resolver.resolve6(host);
              for (const answer of answers) walk.networks.add(network(answer.address, family === 4 ? mechanism[3] : (mechanism[4] ?? mechanism[3])));
            } catch {
              // no addresses of this family
            }
          }
        }
        break;
      }
      case 'include':
        if (!argument) {
          walk.problems.push(`${domain}: include without a domain`);
          break;
        }
        if (!(await count(walk, domain))) return;
        await visit(argument.toLowerCase(), walk, resolver, depth + 1);
        break;
      case 'redirect':
        redirect = argument?.toLowerCase();
        break;
      case 'all':
      case 'exp':
        break;
      case 'exists':
      case 'ptr':
        if (!(await count(walk, domain))) return;
        walk.problems.push(`${domain}: "${term}" cannot be listed as networks`);
        break;
      default:
        walk.problems.push(`${domain}: unknown mechanism "${term}"`);
    }
  }
  if (redirect !== undefined && !/(^|\s)[+~?-]?all(\s|$)/i.test(spf[0]!)) {
    if (!(await count(walk, domain))) return;
    await visit(redirect, walk, resolver, depth + 1);
  }
}

/**
 * The `mxscreen spf-cidr DOMAIN…` command: prints the table to `out` (problems as `#`
 * comments), asking `resolver` (the CLI's: mxscreen_dns_servers). Resolves the exit
 * code: 0, or 1 when no network was found.
 */
export async function spfCidrCommand(
  domains: readonly string[],
  resolver: DnsResolver,
  out: (text: string) => void,
): Promise<number> {
  const result = await spfCidrTable(domains, resolver);
  out(`# cidr_table(5) from the SPF records of ${domains.join(', ')} (mxscreen spf-cidr)\n`);
  for (const problem of result.problems) out(`# ${problem}\n`);
  for (const line of result.lines) out(`${line}\n`);
  return result.lines.length > 0 ? 0 : 1;
}
