/*
 * process-tree — CPU time and resident memory of a process and its descendants, read
 * from Linux /proc, for benchmarks that compare mxscreen (one process, or an owner with
 * workers) with a Postfix instance (master and its short-lived daemons).
 *
 * Decides: the tree of `pid` is `pid` and every live process whose parent chain reaches
 * it (scanning /proc/N/stat); CPU is user + system of each, plus the CPU of children
 * that already exited and were reaped (cutime + cstime), so a Postfix smtpd that ended
 * between two samples still counts. RSS sums the live processes.
 * Leaves to others: what the figures mean (the scenarios).
 * Bugs: a child that exited and was not yet reaped between two samples is missed; Linux only.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

/** Clock ticks per second of /proc/N/stat times (getconf CLK_TCK; 100 on Linux). */
const TICKS_PER_SECOND = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();
const PAGE_BYTES = (() => {
  try {
    return Number(execFileSync('getconf', ['PAGESIZE'], { encoding: 'utf8' }).trim()) || 4096;
  } catch {
    return 4096;
  }
})();

interface ProcessStat {
  readonly pid: number;
  readonly ppid: number;
  /** utime + stime, ticks. */
  readonly ownTicks: number;
  /** cutime + cstime (reaped children), ticks. */
  readonly childTicks: number;
  readonly rssPages: number;
}

function readStat(pid: number): ProcessStat | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'latin1');
    // Fields after the command name in parentheses (which may hold spaces): state is field 3.
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    const at = (field: number) => Number(fields[field - 3]);
    return { pid, ppid: at(4), ownTicks: at(14) + at(15), childTicks: at(16) + at(17), rssPages: at(24) };
  } catch {
    return undefined;
  }
}

/** `root` and its live descendants. */
function tree(root: number): ProcessStat[] {
  const all = readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .map((name) => readStat(Number(name)))
    .filter((stat): stat is ProcessStat => stat !== undefined);
  const members = new Set([root]);
  // Parents before children is not guaranteed by pid order: repeat until no change (bounded by depth).
  for (let grown = true, rounds = 0; grown && rounds < 16; rounds += 1) {
    grown = false;
    for (const stat of all) {
      if (!members.has(stat.pid) && members.has(stat.ppid)) {
        members.add(stat.pid);
        grown = true;
      }
    }
  }
  return all.filter((stat) => members.has(stat.pid));
}

/** CPU time (ms, user + system) used so far by `root`, its live descendants and their reaped children. */
export function treeCpuMs(root: number): number {
  const ticks = tree(root).reduce((sum, stat) => sum + stat.ownTicks + stat.childTicks, 0);
  return (ticks * 1000) / TICKS_PER_SECOND;
}

/** Resident memory (bytes) of `root` and its live descendants. */
export function treeRssBytes(root: number): number {
  return tree(root).reduce((sum, stat) => sum + stat.rssPages, 0) * PAGE_BYTES;
}

/** Number of processes in the tree of `root`. */
export function treeSize(root: number): number {
  return tree(root).length;
}
