// A resolver for tests and benchmarks that must not use DNS: every lookup is NXDOMAIN.
import { DnsError, type DnsResolver } from '../../src/dns/resolver.js';

export const noDns: DnsResolver = {
  resolve4: (name) => Promise.reject(new DnsError('nxdomain', name)),
  resolve6: (name) => Promise.reject(new DnsError('nxdomain', name)),
  resolveMx: (name) => Promise.reject(new DnsError('nxdomain', name)),
  reverse: (name) => Promise.reject(new DnsError('nxdomain', name)),
  resolveTxt: (name) => Promise.reject(new DnsError('nxdomain', name)),
};
