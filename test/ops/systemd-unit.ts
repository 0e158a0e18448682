// The systemd unit of rules/systemd/ read as its keys, for the unit's test and for the
// privilege-drop test that runs mxscreen with the unit's capability bounding set.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { repositoryRoot } from '../fakes/repository-root.js';

export const UNIT_FILE = join(repositoryRoot(), 'rules/systemd/mxscreen.service');

/** A systemd unit file as `section → key → values` (a key given twice keeps both, as systemd appends). */
export function parseUnit(text: string): Map<string, Map<string, string[]>> {
  const sections = new Map<string, Map<string, string[]>>();
  let current: Map<string, string[]> | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const section = /^\[(.+)\]$/.exec(line);
    if (section) {
      current = new Map();
      sections.set(section[1]!, current);
      continue;
    }
    const pair = /^([A-Za-z]+)=(.*)$/.exec(line);
    assert.ok(pair && current, `not a unit line: ${raw}`);
    const values = current.get(pair[1]!) ?? [];
    values.push(pair[2]!);
    current.set(pair[1]!, values);
  }
  return sections;
}

