/*
 * access-restriction — check_client_access, check_helo_access, check_sender_access,
 * check_recipient_access (access(5)).
 *
 * Decides: the lookup keys, in Postfix's order. Indexed tables (hash, texthash, inline…):
 * client → verified host name and its parent domains, then the address and its parent
 * networks (1.2.3.4, 1.2.3, 1.2, 1; IPv6 by `:` groups); helo → the name and its parent
 * domains; sender/recipient → `user@domain`, the domain and its parents, `user@` (the null
 * sender is `<>`). Parent domains are `example.com` when smtpd_access_maps is in
 * parent_domain_matches_subdomains, else `.example.com`. Pattern tables (regexp, pcre)
 * and cidr tables get the whole string once (access(5) "REGULAR EXPRESSION TABLES").
 * The first key with an answer decides; the answer is applied per access-action.ts.
 * Leaves to others: table formats (tables/), evaluating nested restrictions (restriction-list.ts).
 * Bugs: no recipient_delimiter keys (user+ext@).
 */
import { tableTypeOf } from '../tables/open-table.js';
import type { LookupTable } from '../tables/lookup-table.js';
import { unmapIpv4 } from '../tables/ip-network.js';
import { parseAccessAction, type AccessAction } from './access-action.js';
import { DUNNO, rejectReply, type RejectSubject, type RestrictionResult } from './restriction.js';
import type { RestrictionCall } from './restriction.js';

export type AccessTarget = 'client' | 'helo' | 'sender' | 'recipient';

/** True for tables queried with the whole string only (regexp, pcre, cidr). */
function isPatternTable(table: LookupTable): boolean {
  const spec = table.spec.startsWith('proxy:') ? table.spec.slice('proxy:'.length) : table.spec;
  const type = tableTypeOf(spec);
  return type === 'regexp' || type === 'pcre' || type === 'cidr';
}

/** `sub.example.com` → [`example.com`, `com`] or [`.example.com`, `.com`]. */
export function parentDomains(domain: string, parentStyle: boolean): string[] {
  const labels = domain.split('.');
  const parents: string[] = [];
  for (let index = 1; index < labels.length; index++) {
    const parent = labels.slice(index).join('.');
    parents.push(parentStyle ? parent : `.${parent}`);
  }
  return parents;
}

/** `1.2.3.4` → [`1.2.3.4`, `1.2.3`, `1.2`, `1`]; IPv6 by `:` groups. */
export function networkKeys(address: string): string[] {
  const plain = unmapIpv4(address);
  const separator = plain.includes(':') ? ':' : '.';
  const parts = plain.split(separator);
  const keys: string[] = [];
  for (let length = parts.length; length >= 1; length--) {
    const key = parts.slice(0, length).join(separator).replace(/:+$/, '');
    if (key !== '' && !keys.includes(key)) keys.push(key);
  }
  return keys;
}

/** The keys an indexed table is asked, in order, for an address (sender/recipient). */
export function addressKeys(address: string, parentStyle: boolean): string[] {
  if (address === '') return ['<>'];
  const lowered = address.toLowerCase();
  const at = lowered.lastIndexOf('@');
  if (at < 0) return [lowered];
  const domain = lowered.slice(at + 1).replace(/\.$/, '');
  const local = lowered.slice(0, at);
  return [`${local}@${domain}`, domain, ...parentDomains(domain, parentStyle), `${local}@`];
}

async function keysFor(call: RestrictionCall, target: AccessTarget, table: LookupTable): Promise<string[]> {
  const { request, env } = call;
  const parentStyle = env.accessMapsMatchSubdomains;
  switch (target) {
    case 'client': {
      const address = unmapIpv4(request.client.address);
      if (tableTypeOf(table.spec.replace(/^proxy:/, '')) === 'cidr') return [address];
      if (isPatternTable(table)) return [(await call.session.clientNames()).name, address];
      const names = await call.session.clientNames();
      const nameKeys = names.name === 'unknown' ? [] : [names.name, ...parentDomains(names.name, parentStyle)];
      return [...nameKeys, ...networkKeys(address)];
    }
    case 'helo': {
      const helo = request.helo.toLowerCase();
      if (helo === '') return [];
      return isPatternTable(table) ? [helo] : [helo, ...parentDomains(helo, parentStyle)];
    }
    case 'sender': {
      if (request.sender === undefined) return [];
      return isPatternTable(table) ? [request.sender === '' ? '<>' : request.sender] : addressKeys(request.sender, parentStyle);
    }
    case 'recipient': {
      const recipient = request.recipient?.address ?? request.etrnDomain;
      if (recipient === undefined) return [];
      return isPatternTable(table) ? [recipient] : addressKeys(recipient, parentStyle);
    }
    default: {
      const never: never = target;
      throw new Error(`unhandled access target ${String(never)}`);
    }
  }
}

const SUBJECT = { client: 'Client host', helo: 'Helo command', sender: 'Sender address', recipient: 'Recipient address' } as const;

/** What a reply names for `target`: `<host[addr]>`, `<helo>`, `<sender>`, `<recipient>`. */
async function whatOf(call: RestrictionCall, target: AccessTarget): Promise<string> {
  const request = call.request;
  switch (target) {
    case 'client':
      return `${(await call.session.clientNames()).name}[${unmapIpv4(request.client.address)}]`;
    case 'helo':
      return request.helo;
    case 'sender':
      return request.sender ?? '';
    case 'recipient':
      return request.recipient?.address ?? request.etrnDomain ?? '';
    default: {
      const never: never = target;
      throw new Error(`unhandled access target ${String(never)}`);
    }
  }
}

/**
 * Runs check_<target>_access with the call's table. Source: access(5), postconf(5).
 * Never throws (tables never throw; DNS failures give the name `unknown`).
 */
export async function checkAccess(call: RestrictionCall, target: AccessTarget): Promise<RestrictionResult> {
  const table = call.restriction.table;
  if (table === undefined) return DUNNO;
  let answer: { key: string; value: string } | undefined;
  for (const key of await keysFor(call, target, table)) {
    const value = table.lookup(key);
    if (value !== undefined) {
      answer = { key, value };
      break;
    }
  }
  if (answer === undefined) return DUNNO;
  const by = `${call.restriction.written} ${table.spec}`;
  return applyAccessAction(call, parseAccessAction(answer.value), { by, what: await whatOf(call, target), subject: SUBJECT[target], source: `${table.spec}: ${answer.key}` });
}

/**
 * Applies an access(5) action (from a table or a policy server) to a restriction call:
 * `by` names the restriction in logs, `what` and `subject` word the reply, `source` names
 * where the action came from in warnings. Never throws.
 */
export function applyAccessAction(
  call: RestrictionCall,
  action: AccessAction,
  reply: { by: string; what: string; subject: RejectSubject; source: string },
): RestrictionResult {
  const { by, what, subject } = reply;
  switch (action.kind) {
    case 'ok':
      return { kind: 'permit', by };
    case 'dunno':
      return DUNNO;
    case 'reject':
      return { kind: 'reject', by, reply: rejectReply(554, '5.7.1', what, subject, action.text ?? 'Access denied') };
    case 'defer':
      return { kind: 'reject', by, reply: rejectReply(450, '4.7.1', what, subject, action.text ?? 'Access denied') };
    case 'reply':
      return { kind: 'reject', by, reply: rejectReply(action.code, action.code >= 500 ? '5.7.1' : '4.7.1', what, subject, action.text) };
    case 'prepend':
      call.session.prepend(action.header);
      return DUNNO;
    case 'warn':
      call.env.log.warn({ event: 'WARN', source: reply.source }, `warning: ${reply.source}: ${action.text}`);
      return DUNNO;
    case 'restrictions':
      return { kind: 'list', by, words: action.words };
    case 'unsupported':
      call.env.log.warn({ event: 'smtp error', source: reply.source }, `warning: ${reply.source}: unsupported access action "${action.action}"`);
      return { kind: 'reject', by, reply: rejectReply(451, '4.3.5', what, subject, 'Server configuration error') };
    default: {
      const never: never = action;
      throw new Error(`unhandled access action ${JSON.stringify(never)}`);
    }
  }
}
