/*
 * dns-server — a real DNS server on a loopback UDP port, for tests and benchmarks.
 *
 * Decides: what the fake answers. Names set with setA/setAaaa/setMx/setPtr/setTxt/listDnsbl
 * get those records (with their TTL, authoritative); a known name asked for another
 * type gets NOERROR with no answer (c-ares: ENODATA); an unknown name gets NXDOMAIN;
 * setServfail → SERVFAIL; setNoAnswer → the query is never answered (timeouts);
 * setAnswerDelay → every answer leaves that many ms late (a slow DNSBL); setZoneA → every
 * name in a zone has those A records (a DNSBL answering 127.255.255.254 to a resolver it
 * refuses); setZoneNoAnswer → no name in a zone is ever answered. Every query is
 * logged (name, type, time) so tests can count them.
 * Leaves to others: DNSBL return codes and zones (tests choose them; use fake zones such
 * as zen.dnsbl.test, never real ones).
 * Bugs: UDP only, no truncation/TCP fallback, one question per query, no CNAME chasing.
 */
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import * as dnsPacket from 'dns-packet';
import { reverseName } from '../../src/dns/reverse-name.js';
import { parseIpAddress } from '../../src/tables/ip-network.js';

export interface DnsQueryLogEntry {
  /** The queried name, lower-cased, without a trailing dot. */
  readonly name: string;
  /** Record type asked for: A, AAAA, MX, PTR, … */
  readonly type: string;
  /** When it arrived, ms since the epoch. */
  readonly at: number;
}

export interface MxRecord {
  readonly exchange: string;
  readonly priority: number;
}

interface NameRecords {
  A?: { addresses: string[]; ttl: number };
  AAAA?: { addresses: string[]; ttl: number };
  MX?: { records: MxRecord[]; ttl: number };
  PTR?: { names: string[]; ttl: number };
  TXT?: { records: string[][]; ttl: number };
}

type Misbehaviour = 'no-answer' | 'servfail';

export interface FakeDns {
  /** Loopback address the server listens on (127.0.0.1). */
  readonly address: string;
  readonly port: number;
  /** `address:port`, ready for createNodeResolver({ servers: [fake.server] }). */
  readonly server: string;
  /** Every query received, oldest first. */
  readonly queries: readonly DnsQueryLogEntry[];
  /** A records of `name` (replaces earlier ones). `ttl` in seconds. */
  setA(name: string, addresses: readonly string[], ttl?: number): void;
  /** AAAA records of `name` (replaces earlier ones). `ttl` in seconds. */
  setAaaa(name: string, addresses: readonly string[], ttl?: number): void;
  /** MX records of `name` (replaces earlier ones). `ttl` in seconds. */
  setMx(name: string, records: readonly MxRecord[], ttl?: number): void;
  /**
   * TXT records of `name` (replaces earlier ones): each element is one record, a string
   * (cut into 255-byte character-strings) or its character-strings. `ttl` in seconds.
   */
  setTxt(name: string, records: readonly (string | readonly string[])[], ttl?: number): void;
  /** PTR names of IP `address` (in-addr.arpa or ip6.arpa). `ttl` in seconds. */
  setPtr(address: string, names: readonly string[], ttl?: number): void;
  /**
   * Lists `clientIp` in DNSBL `zone` with A records `returnCodes` (e.g. Spamhaus
   * `127.0.0.2`, `127.0.0.10`, `127.255.255.254`). Returns the query name
   * (`2.0.0.127.zen.dnsbl.test`, IPv6 nibble form for IPv6 clients).
   */
  listDnsbl(zone: string, clientIp: string, returnCodes: readonly string[], ttl?: number): string;
  /** Queries for `name` are received and logged but never answered. */
  setNoAnswer(name: string): void;
  /** Queries for `name` are answered SERVFAIL. */
  setServfail(name: string): void;
  /** Every name in `zone` (and below it) answers A queries with `addresses`, other types with no data; names set otherwise included. */
  setZoneA(zone: string, addresses: readonly string[], ttl?: number): void;
  /** No query for a name in `zone` (or below) is ever answered. */
  setZoneNoAnswer(zone: string): void;
  /** Undoes setZoneA / setZoneNoAnswer for `zone`: its names answer as set one by one again. */
  clearZone(zone: string): void;
  /** Every answer from now on is sent `ms` after its query arrived (0: at once). */
  setAnswerDelay(ms: number): void;
  /** How many queries for `name` (any type, or only `type`) arrived. */
  queryCount(name: string, type?: string): number;
  clearQueries(): void;
  close(): Promise<void>;
}

const RCODE_NOERROR = 0;
const RCODE_SERVFAIL = 2;
const RCODE_NXDOMAIN = 3;
const FLAG_AA = 1 << 10;
const FLAG_RD = 1 << 8;
const FLAG_RA = 1 << 7;

function key(name: string): string {
  return name.toLowerCase().replace(/\.$/, '');
}

/** `text` cut into RFC 1035 character-strings of at most 255 bytes (one, empty, for ''). */
function characterStrings(text: string): string[] {
  const bytes = Buffer.from(text, 'utf8');
  const parts: string[] = [];
  for (let at = 0; at < bytes.length || parts.length === 0; at += 255) parts.push(bytes.subarray(at, at + 255).toString('utf8'));
  return parts;
}

/** Starts a fake DNS server on 127.0.0.1, port 0 (ephemeral). */
export async function startDnsServer(): Promise<FakeDns> {
  const records = new Map<string, NameRecords>();
  const misbehaviour = new Map<string, Misbehaviour>();
  const queries: DnsQueryLogEntry[] = [];
  const zones = new Map<string, { a: string[]; ttl: number } | 'no-answer'>();
  /** The zone rule for `name`: its own zone or the closest enclosing one. */
  const zoneOf = (name: string) => {
    for (const [zone, rule] of zones) if (name === zone || name.endsWith(`.${zone}`)) return rule;
    return undefined;
  };
  const socket: Socket = createSocket('udp4');
  let answerDelayMs = 0;

  function entry(name: string): NameRecords {
    const k = key(name);
    let found = records.get(k);
    if (!found) {
      found = {};
      records.set(k, found);
    }
    return found;
  }

  function answersFor(question: dnsPacket.Question): dnsPacket.Answer[] {
    const found = records.get(key(question.name));
    if (!found) return [];
    switch (question.type) {
      case 'A':
        return (found.A?.addresses ?? []).map((data) => ({ type: 'A', name: question.name, ttl: found.A!.ttl, data }));
      case 'AAAA':
        return (found.AAAA?.addresses ?? []).map((data) => ({ type: 'AAAA', name: question.name, ttl: found.AAAA!.ttl, data }));
      case 'MX':
        return (found.MX?.records ?? []).map((mx) => ({ type: 'MX', name: question.name, ttl: found.MX!.ttl, data: { exchange: mx.exchange, preference: mx.priority } }));
      case 'PTR':
        return (found.PTR?.names ?? []).map((data) => ({ type: 'PTR', name: question.name, ttl: found.PTR!.ttl, data }));
      case 'TXT':
        return (found.TXT?.records ?? []).map((data) => ({ type: 'TXT', name: question.name, ttl: found.TXT!.ttl, data }));
      default:
        return [];
    }
  }

  function onMessage(message: Buffer, remote: RemoteInfo): void {
    let query: dnsPacket.Packet;
    try {
      query = dnsPacket.decode(message);
    } catch {
      return; // not DNS: ignore, as a real server would
    }
    const question = query.questions?.[0];
    if (!question) return;
    const name = key(question.name);
    queries.push({ name, type: question.type, at: Date.now() });
    const behaviour = misbehaviour.get(name);
    const zone = zoneOf(name);
    if (behaviour === 'no-answer' || zone === 'no-answer') return;
    const zoneAnswers = zone === undefined || question.type !== 'A' ? [] : zone.a.map((data): dnsPacket.Answer => ({ type: 'A', name: question.name, ttl: zone.ttl, data }));
    const answers = behaviour === 'servfail' ? [] : zone === undefined ? answersFor(question) : zoneAnswers;
    const rcode = behaviour === 'servfail' ? RCODE_SERVFAIL : records.has(name) || zone !== undefined ? RCODE_NOERROR : RCODE_NXDOMAIN;
    const response = dnsPacket.encode({
      id: query.id,
      type: 'response',
      flags: ((query.flags ?? 0) & FLAG_RD) | FLAG_RA | FLAG_AA | rcode,
      questions: [question],
      answers,
    });
    const send = () => {
      try {
        socket.send(response, remote.port, remote.address);
      } catch {
        // closed meanwhile (a delayed answer after close())
      }
    };
    if (answerDelayMs > 0) setTimeout(send, answerDelayMs);
    else send();
  }

  socket.on('message', onMessage);
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(0, '127.0.0.1', () => {
      socket.off('error', reject);
      resolve();
    });
  });
  socket.on('error', () => undefined); // a send to a vanished client port must not crash the test
  const { address, port } = socket.address();

  return {
    address,
    port,
    server: `${address}:${port}`,
    queries,
    setA(name, addresses, ttl = 300) {
      entry(name).A = { addresses: [...addresses], ttl };
    },
    setAaaa(name, addresses, ttl = 300) {
      entry(name).AAAA = { addresses: [...addresses], ttl };
    },
    setMx(name, mxRecords, ttl = 300) {
      entry(name).MX = { records: [...mxRecords], ttl };
    },
    setTxt(name, txtRecords, ttl = 300) {
      entry(name).TXT = { records: txtRecords.map((record) => (typeof record === 'string' ? characterStrings(record) : [...record])), ttl };
    },
    setPtr(ip, names, ttl = 300) {
      const zone = parseIpAddress(ip)?.family === 4 ? 'in-addr.arpa' : 'ip6.arpa';
      entry(reverseName(ip, zone)).PTR = { names: [...names], ttl };
    },
    listDnsbl(zone, clientIp, returnCodes, ttl = 300) {
      const name = reverseName(clientIp, zone);
      entry(name).A = { addresses: [...returnCodes], ttl };
      return name;
    },
    setNoAnswer(name) {
      misbehaviour.set(key(name), 'no-answer');
    },
    setServfail(name) {
      misbehaviour.set(key(name), 'servfail');
    },
    setZoneA(zone, addresses, ttl = 300) {
      zones.set(key(zone), { a: [...addresses], ttl });
    },
    setZoneNoAnswer(zone) {
      zones.set(key(zone), 'no-answer');
    },
    clearZone(zone) {
      zones.delete(key(zone));
    },
    setAnswerDelay(ms) {
      answerDelayMs = Math.max(0, ms);
    },
    queryCount(name, type) {
      const k = key(name);
      return queries.filter((q) => q.name === k && (type === undefined || q.type === type)).length;
    },
    clearQueries() {
      queries.length = 0;
    },
    close() {
      return new Promise<void>((resolve) => socket.close(() => resolve()));
    },
  };
}

/** Runs `run` with a fresh fake DNS server, closed afterwards whatever happens. */
export async function withDnsServer<T>(run: (dns: FakeDns) => Promise<T>): Promise<T> {
  const dns = await startDnsServer();
  try {
    return await run(dns);
  } finally {
    await dns.close();
  }
}
