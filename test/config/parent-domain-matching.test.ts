// parent_domain_matches_subdomains: every parameter name mxscreen honours in it (the
// default list, and transport_maps) changes matching, shown with the name listed and not
// listed; the cases cover exactly those names, so the default and the doc stay true.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CATALOGUE } from '../../src/config/catalogue.js';
import { configFromText } from '../../src/config/config.js';
import { resolveNexthop } from '../../src/delivery/transport.js';
import { smtpdSettingsFromConfig } from '../../src/policy/smtpd-settings.js';
import { queueSettingsFromConfig } from '../../src/queue/queue-settings.js';
import { runTranscript, startPolicy } from '../policy/transcript.js';

// The client 127.0.0.2 is not in mynetworks: only relay_domains lets it relay.
const RELAY = 'mynetworks = 127.0.0.1/32\nsmtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination';
const SESSION = 'C: EHLO client.example.org\nS: 250\nC: MAIL FROM:<a@sender.example>\nS: 250\n';

/** main.cf `parent_domain_matches_subdomains` line: every honoured name, or all but `without`. */
function parentLine(without?: string): string {
  return `parent_domain_matches_subdomains = ${Object.keys(CASES).filter((name) => name !== without).join(', ')}`;
}

async function transcript(mainCf: string, script: string, files?: Record<string, string>): Promise<void> {
  const policy = await startPolicy({ mainCf, ...(files ? { files } : {}) });
  try {
    await runTranscript(policy, script);
  } finally {
    await policy.close();
  }
}

/** For each honoured name: the effect with `listed` true (the name is in the list) and false. */
const CASES: Readonly<Record<string, (listed: boolean, parents: string) => Promise<void>>> = {
  relay_domains: (listed, parents) =>
    transcript(`${RELAY}\nrelay_domains = example.com\n${parents}`, `${SESSION}C: RCPT TO:<joe@sub.example.com>\nS: ${listed ? '250' : '554 5.7.1 <joe@sub.example.com>: Relay access denied'}`),
  smtpd_access_maps: (listed, parents) =>
    transcript(
      `${RELAY}\nrelay_domains = .example.com, example.com\nsmtpd_recipient_restrictions = check_recipient_access hash:recipients\n${parents}`,
      `${SESSION}C: RCPT TO:<joe@sub.example.com>\nS: ${listed ? '554 5.7.1 <joe@sub.example.com>: Recipient address rejected: Not here' : '250'}`,
      { recipients: 'example.com REJECT Not here\n' },
    ),
  fast_flush_domains: (listed, parents) =>
    transcript(`fast_flush_domains = example.com\n${parents}`, `C: EHLO client.example.org\nS: 250\nC: ETRN sub.example.com\nS: ${listed ? '250 Queuing started' : '459 <sub.example.com>: service unavailable'}`),
  transport_maps: async (listed, parents) => {
    const config = configFromText(`myhostname = mx1.example.net\ntransport_maps = inline:{ example.com=smtp:[127.0.0.9]:2525 }\n${parents}\n`, { file: '/etc/mxscreen/main.cf', directory: '/etc/mxscreen' });
    // Delivery (queue) and recipient verification probes (smtpd) route alike.
    for (const settings of [queueSettingsFromConfig(config), smtpdSettingsFromConfig(config).transport]) {
      const nexthop = resolveNexthop('joe@sub.example.com', settings);
      assert.deepEqual(nexthop.kind === 'smtp' ? { host: nexthop.host, mx: nexthop.mxLookup } : nexthop, listed ? { host: '127.0.0.9', mx: false } : { host: 'sub.example.com', mx: true });
    }
  },
};

test('parent_domain_matches_subdomains: the default lists what mxscreen honours, transport_maps aside (Postfix: not in the default)', () => {
  const spec = CATALOGUE.find((entry) => entry.name === 'parent_domain_matches_subdomains')!;
  const defaults = spec.default.split(/[\s,]+/).filter(Boolean).sort();
  assert.deepEqual(defaults, Object.keys(CASES).filter((name) => name !== 'transport_maps').sort());
  for (const name of Object.keys(CASES)) assert.ok(spec.doc.includes(name), `the doc names ${name}`);
});

for (const name of Object.keys(CASES)) {
  test(`parent_domain_matches_subdomains: ${name} listed, example.com matches sub.example.com; not listed, it does not`, async () => {
    await CASES[name]!(true, parentLine());
    await CASES[name]!(false, parentLine(name));
  });
}
