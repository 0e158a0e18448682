/*
 * parameter-table — the README's table of supported parameters, rendered from the catalogue.
 *
 * Decides: the Markdown form of the catalogue (name, default, doc, old names, and for a
 * parameter marked `reload: 'restart'` that a reload does not apply it), so the
 * README cannot drift from the code: a test compares the README section with this output
 * (regenerate with `node dist/src/config/parameter-table.js`).
 * Leaves to others: the catalogue's content.
 */
import { pathToFileURL } from 'node:url';
import { CATALOGUE, type ParameterSpec } from './catalogue.js';

export const TABLE_BEGIN = '<!-- parameters:begin (generated from src/config/catalogue.ts) -->';
export const TABLE_END = '<!-- parameters:end -->';

function cell(text: string): string {
  return text.replace(/\|/g, '\\|');
}

/** The Markdown table, between the begin and end markers, ending with a newline. */
export function renderParameterTable(): string {
  const rows = (CATALOGUE as readonly ParameterSpec[]).map((spec) => {
    const aliases = spec.aliases?.length ? ` (old name: ${spec.aliases.map((n) => `\`${n}\``).join(', ')})` : '';
    const names = `\`${spec.name}\`${aliases}`;
    const value = spec.default === '' ? '(empty)' : `\`${cell(spec.default)}\``;
    const doc = spec.reload === 'restart' ? `${spec.doc} Takes effect after a restart (a reload logs the change).` : spec.doc;
    return `| ${names} | ${value} | ${cell(doc)} |`;
  });
  return [TABLE_BEGIN, '| parameter | default | meaning |', '|---|---|---|', ...rows, TABLE_END, ''].join('\n');
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  process.stdout.write(renderParameterTable());
}
