/*
 * catalogue — every configuration parameter mxscreen knows, declared once.
 *
 * Decides: each parameter's name, kind (how its main.cf text is read), default (written
 * in main.cf syntax, Postfix's default where Postfix has the parameter, see postconf(5)),
 * default time unit, old names accepted as aliases, a one-line doc, and whether a reload
 * can apply a change (`reload: 'restart'` when it cannot). The README's parameter table is
 * checked against this list by a test.
 * Leaves to others: reading main.cf (main-cf.ts), turning text into typed values
 * (config.ts) and what each stage does with them.
 * Bugs: a parameter not listed here is a configuration error, by design (README "Design", Configuration).
 */

/** How a parameter's text is read. See config.ts `ParameterValue` for the resulting types. */
export type ParameterKind =
  | 'string' // text after $name expansion
  | 'list' // comma and/or white space separated words
  | 'boolean' // yes | no
  | 'time' // number with optional unit s, m, h, d, w (and ms, an mxscreen extension); value in ms
  | 'size' // bytes
  | 'integer'
  | 'action' // ignore | enforce | drop (postscreen(8))
  | 'tables' // list of type:name lookup tables
  | 'match-list'; // list of literal patterns and type:name tables (Postfix "match list")

/** Units of a Postfix time value; `ms` is an mxscreen extension for tests and benchmarks. */
export type TimeUnit = 'ms' | 's' | 'm' | 'h' | 'd' | 'w';

export interface ParameterSpec {
  readonly name: string;
  readonly kind: ParameterKind;
  /** Default in main.cf syntax, expanded like a configured value. */
  readonly default: string;
  /** For `time`: the unit of a bare number, as in Postfix. */
  readonly unit?: TimeUnit;
  /** Old names Postfix still accepts for this parameter. */
  readonly aliases?: readonly string[];
  readonly doc: string;
  /**
   * `restart`: a running mxscreen cannot apply a change, and a reload logs the parameter
   * as needing a restart (main.ts, reload-check.ts). Absent: a reload (SIGHUP, an edit
   * of main.cf) applies the new value to new sessions, queue runs and deliveries.
   */
  readonly reload?: 'restart';
}

export const CATALOGUE = [
  // --- identity and networks ---
  { name: 'myhostname', kind: 'string', default: '', doc: 'Internet host name of this mail system; empty means the machine host name.' },
  { name: 'mydomain', kind: 'string', default: 'localdomain', doc: 'Internet domain name of this mail system; used only where a value names $mydomain (mxscreen has no myorigin or mydestination).' },
  { name: 'mail_name', kind: 'string', default: 'mxscreen', doc: 'Mail system name used in smtpd_banner and in Received: headers.' },
  { name: 'mynetworks', kind: 'match-list', default: '127.0.0.0/8, [::1]/128', doc: 'Trusted SMTP clients (network/mask or table); they may relay and pass permit_mynetworks.' },
  { name: 'config_directory', kind: 'string', default: '', doc: 'Directory of main.cf (set automatically; for $config_directory in table names).' },
  { name: 'data_directory', kind: 'string', default: '/var/lib/postfix', doc: 'Accepted for compatibility; directory of Postfix data files (relative paths: the config directory).' },
  { name: 'queue_directory', kind: 'string', default: '/var/spool/mxscreen', doc: 'Queue directory (incoming, active, deferred, corrupt); relative to the config directory when not absolute.', reload: 'restart' },
  { name: 'mail_owner', kind: 'string', default: 'mxscreen', doc: 'The system account that owns queue_directory; mxscreen start run as root binds its sockets, then runs as this user and its primary group (README "Install as a service"); started as another user it stays that user.', reload: 'restart' },
  { name: 'parent_domain_matches_subdomains', kind: 'list', default: 'fast_flush_domains, relay_domains, smtpd_access_maps', doc: 'Parameters in which example.com also matches its subdomains; mxscreen honours fast_flush_domains, relay_domains, smtpd_access_maps (check_*_access tables) and transport_maps, other names change nothing (Postfix before compatibility level 3.6 also lists debug_peer_list, mynetworks, permit_mx_backup_networks, qmqpd_authorized_clients: mxscreen lacks them or matches mynetworks by address only).' },

  // --- mxscreen extensions: what Postfix keeps outside main.cf ---
  { name: 'mxscreen_listen', kind: 'list', default: '0.0.0.0:25', doc: 'SMTP listen addresses, host:port ([::1]:port for IPv6); the screener owns these sockets (master.cf smtp inet).', reload: 'restart' },
  { name: 'mxscreen_listen_backlog', kind: 'integer', default: '0', doc: 'listen(2) backlog of each mxscreen_listen socket (connections the kernel queues before they are accepted); 0 means the system net.core.somaxconn (4096 when unreadable). The kernel caps it at net.core.somaxconn.', reload: 'restart' },
  { name: 'mxscreen_metrics_listen', kind: 'string', default: '127.0.0.1:9125', doc: 'host:port of the Prometheus /metrics endpoint; empty disables it.', reload: 'restart' },
  { name: 'mxscreen_dns_servers', kind: 'list', default: '', doc: 'DNS servers for DNSBL and delivery lookups, ip[:port]; empty means the system resolver.' },
  { name: 'mxscreen_verdict_cache_size', kind: 'integer', default: '100000', doc: 'Maximum number of clients kept in the postscreen verdict cache (entries).', reload: 'restart' },
  { name: 'mxscreen_workers', kind: 'integer', default: '0', doc: 'Worker processes that run the screen and policy stages; the owner process keeps the listening sockets, the queue manager, /metrics, reload and signals, and hands each connection to the worker chosen by a hash of the client address. 1 runs every stage in one process; 0 means the number of CPUs (os.availableParallelism()).', reload: 'restart' },
  { name: 'mxscreen_shutdown_timeout', kind: 'time', default: '30s', unit: 's', doc: 'On SIGTERM, how long open SMTP sessions may go on before they are closed.' },

  // --- postscreen(8) ---
  { name: 'postscreen_access_list', kind: 'list', default: 'permit_mynetworks', doc: 'Permanent allow/deny list: permit_mynetworks and cidr: tables with permit, reject or dunno; first match wins.' },
  { name: 'postscreen_denylist_action', kind: 'action', default: 'ignore', aliases: ['postscreen_blacklist_action'], doc: 'Action for a client that postscreen_access_list rejects: ignore, enforce or drop.' },
  { name: 'postscreen_greet_banner', kind: 'string', default: '$smtpd_banner', doc: 'Text of the teaser 220- line sent before the greet wait; empty disables the teaser.' },
  { name: 'postscreen_greet_wait', kind: 'time', default: '6s', unit: 's', doc: 'How long to wait for a client to talk before the real 220 greeting (pregreet test); 2s in stress mode.' },
  { name: 'postscreen_greet_action', kind: 'action', default: 'ignore', doc: 'Action for a client that talks before its turn: ignore, enforce or drop.' },
  { name: 'postscreen_greet_ttl', kind: 'time', default: '1d', unit: 's', doc: 'How long a passed pregreet test stays valid in the verdict cache.' },
  { name: 'postscreen_dnsbl_sites', kind: 'list', default: '', doc: 'DNSBL sites, domain[=filter][*weight]; filter like 127.0.0.[2..11]; negative weights for DNSWL sites.' },
  { name: 'postscreen_dnsbl_threshold', kind: 'integer', default: '1', doc: 'DNSBL rank (sum of weights of listing sites) at which the DNSBL test fails.' },
  { name: 'postscreen_dnsbl_action', kind: 'action', default: 'ignore', doc: 'Action for a client whose DNSBL rank reaches the threshold: ignore, enforce or drop.' },
  { name: 'postscreen_dnsbl_min_ttl', kind: 'time', default: '60s', unit: 's', doc: 'Lower bound of the time a passed DNSBL test stays valid (the answer TTL is clamped to it).' },
  { name: 'postscreen_dnsbl_max_ttl', kind: 'time', default: '1h', unit: 's', doc: 'Upper bound of the time a passed DNSBL test stays valid.' },
  { name: 'postscreen_dnsbl_timeout', kind: 'time', default: '10s', unit: 's', doc: 'Time limit of a DNSBL query; a timeout counts as not listed.' },
  { name: 'postscreen_cache_map', kind: 'string', default: 'btree:$data_directory/postscreen_cache', doc: 'Where the verdict cache lives: redis:/path/file.cf shares it on Redis between hosts (mx1/mx2), with the in-process cache in front (README "Sharing the verdict cache"); any other map type means the in-process cache alone.', reload: 'restart' },
  { name: 'postscreen_cache_retention_time', kind: 'time', default: '7d', unit: 'd', doc: 'How long an expired verdict cache record is kept, so a returning client is logged PASS OLD, not PASS NEW.', reload: 'restart' },
  { name: 'postscreen_cache_cleanup_interval', kind: 'time', default: '12h', unit: 's', doc: 'Time between verdict cache cleanups (in slices that never block the event loop); 0 disables them. With redis: only the in-process near cache is cleaned: Redis expires its keys itself.' },
  { name: 'postscreen_dnsbl_allowlist_threshold', kind: 'integer', default: '0', aliases: ['postscreen_dnsbl_whitelist_threshold'], doc: 'A negative DNSBL rank at or below which a client skips the other tests (marked passed); 0 disables it.' },
  { name: 'postscreen_dnsbl_reply_map', kind: 'tables', default: '', doc: 'Tables from a DNSBL domain (with a secret key) to the name shown in replies and INFO log lines.' },
  { name: 'postscreen_allowlist_interfaces', kind: 'match-list', default: 'static:all', aliases: ['postscreen_whitelist_interfaces'], doc: 'Local addresses where a new client can pass and reach smtpd; elsewhere (a backup MX) it is tested in postscreen\'s own engine, refused at RCPT, never cached (ALLOWLIST VETO); PASS OLD works on every address.' },
  { name: 'postscreen_client_connection_count_limit', kind: 'integer', default: '$smtpd_client_connection_count_limit', doc: 'Connections one client may have open in the screen stage; one handed to smtpd no longer counts (421 4.7.0 Error: too many connections); 0 means no limit.' },
  { name: 'postscreen_pre_queue_limit', kind: 'integer', default: '100', doc: 'Connections in the screen stage at once (421 4.3.2 All screening ports are busy); stress mode from 90% to 70% of it.' },
  { name: 'postscreen_post_queue_limit', kind: 'integer', default: '100', doc: 'Connections handed to the smtpd stage at once (421 4.3.2 All server ports are busy).' },
  { name: 'smtpd_client_connection_count_limit', kind: 'integer', default: '50', doc: 'Connections one client may have open in the smtpd stage (anvil(8); 421 4.7.0 host Error: too many connections from addr); smtpd_client_event_limit_exceptions are exempt; 0 means no limit.' },
  { name: 'smtpd_client_connection_rate_limit', kind: 'integer', default: '0', doc: 'Connections one client may make to the smtpd stage per anvil_rate_time_unit (anvil(8); 421 4.7.0); smtpd_client_event_limit_exceptions are exempt; 0 means no limit.' },
  { name: 'smtpd_client_event_limit_exceptions', kind: 'match-list', default: '$mynetworks', aliases: ['smtpd_client_connection_limit_exceptions'], doc: 'Clients (network/mask or table) that the smtpd connection count and rate limits neither count nor limit.' },
  { name: 'anvil_rate_time_unit', kind: 'time', default: '60s', unit: 's', doc: 'Time unit of smtpd_client_connection_rate_limit.' },
  { name: 'postscreen_upstream_proxy_protocol', kind: 'string', default: '', doc: 'Empty, or haproxy: every connection starts with a PROXY v1 or v2 header naming the real client.' },
  { name: 'postscreen_upstream_proxy_timeout', kind: 'time', default: '5s', unit: 's', doc: 'Time limit for the PROXY header to arrive.' },
  { name: 'postscreen_pipelining_enable', kind: 'boolean', default: 'no', doc: 'Run the pipelining test on the live session (a command before the reply to the previous one, RFC 2920).' },
  { name: 'postscreen_pipelining_action', kind: 'action', default: 'enforce', doc: 'Action for a client that fails the pipelining test: ignore, enforce (refused before DATA) or drop.' },
  { name: 'postscreen_pipelining_ttl', kind: 'time', default: '30d', unit: 's', doc: 'How long a passed pipelining test stays valid in the verdict cache.' },
  { name: 'postscreen_non_smtp_command_enable', kind: 'boolean', default: 'no', doc: 'Run the non-SMTP command test on the live session (postscreen_forbidden_commands, header-like Label: commands).' },
  { name: 'postscreen_non_smtp_command_action', kind: 'action', default: 'drop', doc: 'Action for a client that sends a non-SMTP command: ignore, enforce or drop.' },
  { name: 'postscreen_non_smtp_command_ttl', kind: 'time', default: '30d', unit: 's', doc: 'How long a passed non-SMTP command test stays valid in the verdict cache.' },
  { name: 'postscreen_forbidden_commands', kind: 'list', default: 'CONNECT, GET, POST', doc: 'Commands that fail the non-SMTP command test (Postfix default: $smtpd_forbidden_commands).' },
  { name: 'postscreen_bare_newline_enable', kind: 'boolean', default: 'no', doc: 'Run the bare newline test on the live session (a command line ended by LF alone).' },
  { name: 'postscreen_bare_newline_action', kind: 'action', default: 'ignore', doc: 'Action for a client that ends a line with a bare newline: ignore, enforce or drop.' },
  { name: 'postscreen_bare_newline_ttl', kind: 'time', default: '30d', unit: 's', doc: 'How long a passed bare newline test stays valid in the verdict cache.' },
  { name: 'postscreen_command_count_limit', kind: 'integer', default: '20', doc: 'Commands a client may send before it passes the deep tests, or in a whole vetoed session (COMMAND COUNT LIMIT, 421).' },
  { name: 'postscreen_command_time_limit', kind: 'time', default: '300s', unit: 's', doc: 'Time limit for each command before the client passes the deep tests, or in a whole vetoed session (10s in stress mode; COMMAND TIME LIMIT).' },
  { name: 'line_length_limit', kind: 'integer', default: '2048', doc: 'Longest command line in bytes before the client passes the deep tests, or in a whole vetoed session (COMMAND LENGTH LIMIT, 421).' },

  // --- self-listing monitor (are our own addresses on a DNSBL?) ---
  { name: 'mxscreen_self_listing_addresses', kind: 'list', default: '', doc: 'Our own public IPv4/IPv6 addresses (sending and receiving) to check on DNSBL sites; empty disables the monitor (mxscreen cannot guess them: NAT, several interfaces, outbound source addresses).' },
  { name: 'mxscreen_self_listing_sites', kind: 'list', default: '$postscreen_dnsbl_sites', doc: 'DNSBL sites the addresses are checked on; entries with a positive weight count, =filter and *weight are ignored.' },
  { name: 'mxscreen_self_listing_interval', kind: 'time', default: '1h', unit: 's', doc: 'Time between two self-listing rounds (Spamhaus and other lists ask not to query more often).' },

  // --- smtpd(8) ---
  { name: 'smtpd_banner', kind: 'string', default: '$myhostname ESMTP $mail_name', doc: 'Text after 220 in the greeting; must begin with the host name followed by ESMTP.' },
  { name: 'smtpd_timeout', kind: 'time', default: '300s', unit: 's', doc: 'Time limit for a client to send a command or data.' },
  { name: 'smtpd_recipient_limit', kind: 'integer', default: '1000', doc: 'Maximum number of recipients of one message; every accepted RCPT counts, a repeated one too (452 4.5.3 beyond it).' },
  { name: 'smtpd_recipient_overshoot_limit', kind: 'integer', default: '1000', doc: 'RCPTs past smtpd_recipient_limit in one transaction that get 452 4.5.3 without counting as errors (smtpd_soft/hard_error_limit).' },
  { name: 'smtpd_tls_cert_file', kind: 'string', default: '', doc: 'PEM certificate for STARTTLS; STARTTLS is offered only when this and smtpd_tls_key_file are set.' },
  { name: 'smtpd_tls_key_file', kind: 'string', default: '$smtpd_tls_cert_file', doc: 'PEM private key for STARTTLS.' },
  { name: 'message_size_limit', kind: 'size', default: '10240000', doc: 'Maximum size of a message in bytes (SIZE in the EHLO reply, 552 5.3.4 beyond it).' },
  { name: 'relay_domains', kind: 'match-list', default: '', doc: 'Domains this host relays mail to (names or tables, only the key counts).' },
  { name: 'relay_recipient_maps', kind: 'tables', default: '', doc: 'Valid recipients of relay_domains (user@domain or @domain keys); empty accepts any.' },
  { name: 'smtpd_helo_required', kind: 'boolean', default: 'no', doc: 'yes: MAIL, RCPT, DATA and ETRN before HELO/EHLO get 503 5.5.1 (smtp-server requires HELO/EHLO always, see Bugs).' },
  { name: 'strict_rfc821_envelopes', kind: 'boolean', default: 'no', doc: 'yes: MAIL FROM and RCPT TO addresses must be in <>, with no comments or phrases (501 5.1.7 / 5.1.3).' },
  { name: 'disable_vrfy_command', kind: 'boolean', default: 'no', doc: 'yes: VRFY gets 502 5.5.1 VRFY command is disabled.' },
  { name: 'smtpd_forbidden_commands', kind: 'list', default: 'CONNECT, GET, POST', doc: 'Commands after which smtpd hangs up at once (221 2.7.0 Error: I can break rules, too. Goodbye.), as does a command that looks like a message header (`Label:`), logged `non-SMTP command`. Postfix 3.7 also lists `regexp:{{/^[^A-Z]/ Bogus}}`; here a command that does not start with a letter gets 500 5.5.2 instead.' },
  { name: 'smtpd_soft_error_limit', kind: 'integer', default: '10', doc: 'Errors (4xx/5xx replies) in a session after which every reply is delayed by smtpd_error_sleep_time.' },
  { name: 'smtpd_hard_error_limit', kind: 'integer', default: '20', doc: 'Errors in a session at which the client gets 421 4.7.0 Error: too many errors and is disconnected.' },
  { name: 'smtpd_error_sleep_time', kind: 'time', default: '1s', unit: 's', doc: 'Delay of each reply once a session has more than smtpd_soft_error_limit errors.' },

  // --- smtpd(8) restrictions (smtpd_delay_reject = yes: client, helo and sender lists run at RCPT TO) ---
  { name: 'smtpd_client_restrictions', kind: 'list', default: '', doc: 'Restrictions on the client address and name, evaluated at RCPT TO.' },
  { name: 'smtpd_helo_restrictions', kind: 'list', default: '', doc: 'Restrictions on the HELO/EHLO name, evaluated at RCPT TO.' },
  { name: 'smtpd_sender_restrictions', kind: 'list', default: '', doc: 'Restrictions on the MAIL FROM address, evaluated at RCPT TO.' },
  { name: 'smtpd_relay_restrictions', kind: 'list', default: 'permit_mynetworks, permit_sasl_authenticated, defer_unauth_destination', doc: 'Relay control, evaluated at RCPT TO before smtpd_recipient_restrictions.' },
  { name: 'smtpd_recipient_restrictions', kind: 'list', default: '', doc: 'Restrictions on the RCPT TO address, evaluated after smtpd_relay_restrictions.' },
  { name: 'smtpd_data_restrictions', kind: 'list', default: '', doc: 'Restrictions evaluated at DATA, before 354.' },
  { name: 'smtpd_etrn_restrictions', kind: 'list', default: '', doc: 'Restrictions on the ETRN domain, evaluated at ETRN.' },
  { name: 'smtpd_restriction_classes', kind: 'list', default: '', doc: 'Names of restriction classes; each is then set in main.cf as name = restriction list, and access tables may answer with the name.' },
  { name: 'smtpd_reject_unlisted_recipient', kind: 'boolean', default: 'yes', doc: 'Reject a relay_domains recipient not in relay_recipient_maps even when no reject_unlisted_recipient is listed.' },
  { name: 'smtpd_policy_service_timeout', kind: 'time', default: '100s', unit: 's', doc: 'Time limit to connect to, write to and read from a check_policy_service server.' },
  { name: 'smtpd_policy_service_default_action', kind: 'string', default: '451 4.3.5 Server configuration problem', doc: 'Action used when a check_policy_service server fails or times out.' },
  { name: 'rbl_reply_maps', kind: 'tables', default: '', doc: 'Tables from an RBL domain to the reply of reject_rbl_client ($rbl_code, $rbl_class, $rbl_what, $rbl_domain, $rbl_reason).' },
  { name: 'virtual_alias_maps', kind: 'tables', default: '', doc: 'virtual(5) aliases: user@domain, user (local addresses such as postmaster@[our IP] only) or @domain to addresses.' },

  // --- address verification (verify(8)) for reject_unverified_recipient ---
  { name: 'address_verify_positive_expire_time', kind: 'time', default: '31d', unit: 's', doc: 'How long a recipient that the nexthop accepted stays verified.' },
  { name: 'address_verify_positive_refresh_time', kind: 'time', default: '7d', unit: 's', doc: 'Age after which a verified recipient is probed again (in the background).' },
  { name: 'address_verify_negative_expire_time', kind: 'time', default: '3d', unit: 's', doc: 'How long a recipient that the nexthop refused stays refused.' },
  { name: 'address_verify_negative_refresh_time', kind: 'time', default: '3h', unit: 's', doc: 'Age after which a refused recipient is probed again (in the background).' },
  { name: 'address_verify_poll_count', kind: 'integer', default: '3', doc: 'How many times RCPT TO polls the result of a first probe before it answers 450.' },
  { name: 'address_verify_poll_delay', kind: 'time', default: '3s', unit: 's', doc: 'Time between two polls of a probe in flight.' },
  { name: 'unverified_recipient_reject_code', kind: 'integer', default: '450', doc: 'Reply code for a recipient the nexthop refused (450, or 550 once you trust the probes).' },
  { name: 'mxscreen_verify_cache_size', kind: 'integer', default: '100000', doc: 'Most recipients kept in the address verification cache (a file in the queue directory).' },
  { name: 'mxscreen_verify_probe_limit', kind: 'integer', default: '10', doc: 'Most probes in flight to one nexthop; further unknown recipients get 450 at once (dictionary attacks).' },

  // --- cleanup(8) content checks ---
  { name: 'header_checks', kind: 'tables', default: '', doc: 'regexp:/pcre: tables matched against each top-level header: REJECT, WARN, DISCARD, HOLD, IGNORE, DUNNO, PREPEND.' },
  { name: 'mime_header_checks', kind: 'tables', default: '$header_checks', doc: 'Tables matched against MIME headers (Content-*, MIME-Version) at every level, filenames decoded (RFC 2231/2047).' },
  { name: 'nested_header_checks', kind: 'tables', default: '$header_checks', doc: 'Tables matched against the non-MIME headers of attached messages (message/rfc822).' },
  { name: 'mxscreen_blocked_attachment_types', kind: 'list', default: '', doc: 'MIME types (application/x-msdownload) or families (application/*) refused with 550 5.7.1, matched against the declared type and the filename extension.' },

  // --- cleanup(8) safety limits (content-limits.ts), applied to every message ---
  { name: 'header_size_limit', kind: 'size', default: '102400', doc: 'Longest logical header (its lines joined) in bytes; the excess is discarded and the message still accepted.' },
  { name: 'mxscreen_header_count_limit', kind: 'integer', default: '1000', doc: 'Most header fields in one header section (the message, a MIME part, an attached message); more: 552 5.6.0.' },
  { name: 'mime_nesting_limit', kind: 'integer', default: '100', doc: 'Most containers (multipart, message/rfc822) around a MIME part; deeper: 550 5.6.0 MIME nesting exceeds safety limit.' },
  { name: 'mime_boundary_length_limit', kind: 'integer', default: '2048', doc: 'Bytes of a MIME boundary that are compared; longer boundaries are matched on these bytes only.' },
  { name: 'mxscreen_mime_part_count_limit', kind: 'integer', default: '1000', doc: 'Most MIME body parts in one message, counted at every level; more: 552 5.6.0.' },

  // --- queue manager and delivery ---
  { name: 'transport_maps', kind: 'tables', default: '', doc: 'transport(5) tables: recipient or domain to transport:nexthop.' },
  { name: 'relayhost', kind: 'string', default: '', doc: 'Nexthop for mail that transport_maps does not route, [host]:port or host.' },
  { name: 'maximal_queue_lifetime', kind: 'time', default: '5d', unit: 'd', doc: 'How long a deferred message is retried before it bounces.' },
  { name: 'minimal_backoff_time', kind: 'time', default: '300s', unit: 's', doc: 'Shortest time between delivery attempts of a deferred message.' },
  { name: 'maximal_backoff_time', kind: 'time', default: '4000s', unit: 's', doc: 'Longest time between delivery attempts of a deferred message.' },
  { name: 'queue_run_delay', kind: 'time', default: '300s', unit: 's', doc: 'Time between scans of the deferred queue.' },
  { name: 'smtp_connect_timeout', kind: 'time', default: '30s', unit: 's', doc: 'Time limit for connecting to a nexthop SMTP server.' },
  { name: 'bounce_queue_lifetime', kind: 'time', default: '5d', unit: 'd', doc: 'How long a bounce (null sender <>) is retried before it is given up (never bounced again).' },
  { name: 'delay_warning_time', kind: 'time', default: '0h', unit: 'h', doc: 'After this time undelivered, the sender gets one delay notice (DSN action delayed); 0 disables it.' },
  { name: 'bounce_size_limit', kind: 'size', default: '50000', doc: 'Largest original message returned whole in a bounce (bytes); larger ones return their headers only.' },
  { name: 'defer_transports', kind: 'list', default: '', doc: 'Transports (smtp, relay, …) whose mail is held in deferred/ until queue flush or ETRN.' },
  { name: 'fast_flush_domains', kind: 'match-list', default: '$relay_domains', doc: 'Domains for which SMTP ETRN starts delivery of queued mail.' },
  { name: 'default_destination_concurrency_limit', kind: 'integer', default: '20', doc: 'Most SMTP connections open to one nexthop at once.' },
  { name: 'smtp_connection_cache_time_limit', kind: 'time', default: '2s', unit: 's', doc: 'How long an idle connection to a nexthop is kept for the next message (connection reuse).' },
  { name: 'smtp_tls_security_level', kind: 'string', default: '', doc: 'TLS to the nexthop: none (or empty), may (STARTTLS when offered, unverified) or encrypt (defer without STARTTLS).' },
  { name: 'queue_minfree', kind: 'size', default: '0', doc: 'Free bytes the queue file system must keep; MAIL and DATA get 452 4.3.1 below max(this, 1.5 x message_size_limit).' },
] as const satisfies readonly ParameterSpec[];

/** Name of a parameter in the catalogue (aliases are resolved when main.cf is read). */
export type ParameterName = (typeof CATALOGUE)[number]['name'];

/** The kind of parameter `N`. */
export type KindOf<N extends ParameterName> = Extract<(typeof CATALOGUE)[number], { name: N }>['kind'];
