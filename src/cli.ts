/*
 * cli — the `mxscreen` command: start | check-config | queue list|show|flush|delete|hold|release|requeue | sink | spf-cidr | rbl-check.
 *
 * Decides: command names, options (`-c FILE` = `--config FILE`), exit codes (0 ok,
 * 1 configuration or runtime error, 64 usage error, as sysexits EX_USAGE; rbl-check has
 * check_rbl's own: 0 none listed, 1 listed, 2 could not check or a bad main.cf) and the
 * signals of a running filter: SIGTERM/SIGINT = graceful stop, SIGHUP = reload; that `start`
 * drops root privileges to mail_owner unless --no-privilege-drop (ops/privileges.ts).
 * Leaves to others: what each command does (main.ts, config/, queue/, sink/).
 */
import { parseArgs } from 'node:util';
import { checkConfiguration, startMxscreen } from './main.js';
import { loadConfig } from './config/config.js';
import { ConfigError, formatProblem, MxError } from './errors.js';
import { listQueue, formatQueueListing } from './queue/spool.js';
import { queueSettingsFromConfig } from './queue/queue-settings.js';
import { runQueueControl, type ControlCommand } from './queue/queue-control.js';
import { formatQueueMessage, showQueuedMessage } from './queue/queue-show.js';
import { Sink } from './sink/sink.js';
import { createLogger } from './ops/log.js';
import { spfCidrCommand } from './policy/spf-cidr.js';
import { createNodeResolver } from './dns/node-resolver.js';
import { RBL_CHECK_EXIT, RblCheckUsage, rblCheck } from './dnsbl/rbl-check.js';
import { planQueueCommand, Privileges, SYSTEM_PROBE, type PrivilegeMode } from './ops/privileges.js';

const USAGE = `usage:
  mxscreen start --config FILE [--no-privilege-drop]
                                        run the filter in the foreground (JSON logs on stdout);
                                        started as root it binds its sockets, then runs as mail_owner
  mxscreen check-config --config FILE   print every configuration error as file:line: message
  mxscreen queue list --config FILE [--json]
                                        one line per queued message (corrupt/ files marked)
  mxscreen queue show ID --config FILE [--json]
                                        envelope, recipients' delivery history, headers
  mxscreen queue flush [DOMAIN] --config FILE
                                        deliver deferred mail now (all, or one domain)
  mxscreen queue delete|hold|release|requeue ID|ALL --config FILE
                                        postsuper -d, -h, -H, -r (safe while mxscreen runs);
                                        requeue ID also repairs a corrupt/ file whose body is complete
  mxscreen sink --listen HOST:PORT [--dir DIR]
                                        accept and count mail, like Postfix smtp-sink
  mxscreen spf-cidr DOMAIN... [--config FILE]
                                        the ip4:/ip6: networks of the domains' SPF records as a cidr: table
  mxscreen rbl-check [--config FILE] [--site DOMAIN]... [ADDRESS...]
                                        are our addresses listed? address x site: listed / not listed /
                                        could not check; exit 0 none listed, 1 listed, 2 could not check
options:
  -c, --config FILE   main.cf to use
  --no-privilege-drop start as root stays root (mail_owner ignored): tests, or a container
                      whose runtime has already dropped what it should
`;

const EXIT_USAGE = 64;

function usage(message: string): never {
  process.stderr.write(`mxscreen: ${message}\n${USAGE}`);
  process.exit(EXIT_USAGE);
}

async function main(argv: readonly string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: [...argv],
    allowPositionals: true,
    options: {
      config: { type: 'string', short: 'c' },
      listen: { type: 'string' },
      dir: { type: 'string' },
      json: { type: 'boolean' },
      site: { type: 'string', multiple: true },
      help: { type: 'boolean', short: 'h' },
      'no-privilege-drop': { type: 'boolean' },
    },
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const [command, subcommand] = positionals;
  const configFile = values.config;
  switch (command) {
    case 'start': {
      if (!configFile) usage('start needs --config FILE');
      return runFilter(configFile, values['no-privilege-drop'] ? 'stay' : 'mail_owner');
    }
    case 'check-config': {
      if (!configFile) usage('check-config needs --config FILE');
      const problems = checkConfiguration(configFile);
      for (const problem of problems) process.stdout.write(`${formatProblem(problem)}\n`);
      return problems.length === 0 ? 0 : 1;
    }
    case 'queue': {
      if (!configFile) usage(`queue ${subcommand ?? ''} needs --config FILE`);
      return queueCommand(subcommand, positionals[2], configFile, values.json ?? false);
    }
    case 'sink': {
      if (!values.listen) usage('sink needs --listen HOST:PORT');
      const log = createLogger();
      const sink = await Sink.start({ listen: values.listen, directory: values.dir, log });
      log.info({ event: 'LISTEN', port: sink.port }, `sink listening on ${values.listen}`);
      await new Promise<void>((resolve) => {
        const stop = () => resolve();
        process.once('SIGTERM', stop);
        process.once('SIGINT', stop);
      });
      await sink.close();
      return 0;
    }
    case 'spf-cidr': {
      const domains = positionals.slice(1);
      if (domains.length === 0) usage('spf-cidr needs at least one DOMAIN');
      const servers = configFile ? loadConfig(configFile).get('mxscreen_dns_servers') : [];
      return spfCidrCommand(domains, createNodeResolver({ servers, timeoutMs: 5000 }), (text) => process.stdout.write(text));
    }
    case 'rbl-check':
      return rblCheckCommand(configFile, positionals.slice(1), values.site ?? []);
    case undefined:
      usage('no command given');
    default:
      usage(`unknown command "${command}"`);
  }
}

/** `mxscreen queue …`: list and show read the files; the others go through queue-control.ts. */
async function queueCommand(subcommand: string | undefined, argument: string | undefined, configFile: string, json: boolean): Promise<number> {
  const config = loadConfig(configFile);
  const { directory } = queueSettingsFromConfig(config);
  // Run by root, act as mail_owner when it owns the queue (ops/privileges.ts), as postsuper(1) does.
  new Privileges(planQueueCommand(config.get('mail_owner'), directory, SYSTEM_PROBE)).dropQuietly();
  switch (subcommand) {
    case 'list': {
      const entries = await listQueue(directory);
      process.stdout.write(json ? `${JSON.stringify(entries, null, 2)}\n` : formatQueueListing(entries));
      return 0;
    }
    case 'show': {
      if (!argument) usage('queue show needs a queue ID');
      const view = await showQueuedMessage(directory, argument.toUpperCase());
      if (!view) {
        process.stderr.write(`mxscreen: ${argument}: no such message\n`);
        return 1;
      }
      process.stdout.write(json ? `${JSON.stringify(view, null, 2)}\n` : formatQueueMessage(view));
      return 0;
    }
    case 'flush':
    case 'delete':
    case 'hold':
    case 'release':
    case 'requeue': {
      const command: ControlCommand = subcommand;
      if (command !== 'flush' && !argument) usage(`queue ${command} needs a queue ID or ALL`);
      const reply = await runQueueControl(directory, { command, target: argument ?? '' });
      process.stdout.write(json ? `${JSON.stringify(reply)}\n` : `${reply.text}\n`);
      return reply.ok ? 0 : 1;
    }
    default:
      usage(`unknown queue command "${subcommand ?? ''}"`);
  }
}

/**
 * `mxscreen rbl-check`: prints the table and exits at once with its status (rbl-check.ts).
 * Exits rather than returns: the dnsbl package leaves a timer of the time limit behind
 * every query that does not find a listing, which would hold the process that long.
 */
async function rblCheckCommand(configFile: string | undefined, addresses: readonly string[], sites: readonly string[]): Promise<never> {
  let result: { text: string; status: number };
  try {
    result = await rblCheck({ configFile, addresses, sites });
  } catch (error) {
    if (error instanceof RblCheckUsage) usage(`rbl-check: ${error.message}`);
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(`mxscreen: ${error.message}\n`);
    result = { text: '', status: RBL_CHECK_EXIT.couldNotCheck };
  }
  await new Promise<void>((resolve) => process.stdout.write(result.text, () => resolve()));
  process.exit(result.status);
}

/** Runs the filter until SIGTERM/SIGINT; SIGHUP reloads. Resolves the exit code. */
async function runFilter(configFile: string, privileges: PrivilegeMode): Promise<number> {
  const mx = await startMxscreen({ configFile, privileges });
  process.on('SIGHUP', () => {
    void mx.reload();
  });
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });
  await mx.stop();
  mx.log.flush();
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    if (error instanceof MxError) {
      process.stderr.write(`mxscreen: ${error.message}\n`);
    } else {
      process.stderr.write(`mxscreen: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    }
    process.exitCode = 1;
  },
);
