/*
 * expansion — postconf(5) parameter expansion: `$name`, `${name}`, `$(name)`,
 * `${name?value}`, `${name?{value}}`, `${name:value}`, `${name:{value}}`,
 * `${name?{value1}:{value2}}`, and `$$` for a single `$`.
 *
 * Decides: expansion is recursive (a value's own `$names` are expanded too, memoized per
 * name), an undefined name expands to the empty string as in Postfix, a loop
 * (a = $b, b = $a) is reported with its path and expands to empty, an unclosed `${` is a
 * problem; a `$` followed by anything else stays a literal `$`.
 * Leaves to others: where raw values come from (configured, then catalogue default) and
 * any fix-up after expansion such as an empty myhostname (config.ts).
 * Bugs: no `${name==value?…}` comparison forms (Postfix 3.5).
 */

/** The expanded text, or why it could not be expanded (a loop path or a syntax error). */
export interface Expansion {
  readonly value: string;
  readonly problem?: string;
}

const NAME = /^[A-Za-z0-9_]+/;

/**
 * Expands parameters against `raw(name)` (the unexpanded text of a parameter, undefined
 * when the name is not defined). `finish(name, value)` may adjust a parameter's expanded
 * value before others see it. One expander per configuration load; never throws.
 */
export class ParameterExpander {
  private readonly done = new Map<string, Expansion>();
  private readonly active: string[] = [];

  constructor(
    private readonly raw: (name: string) => string | undefined,
    private readonly finish: (name: string, value: string) => string = (_name, value) => value,
  ) {}

  /** The fully expanded value of parameter `name` ('' when undefined). */
  value(name: string): Expansion {
    const known = this.done.get(name);
    if (known !== undefined) return known;
    if (this.active.includes(name)) {
      const path = [...this.active.slice(this.active.indexOf(name)), name];
      return { value: '', problem: `parameter expansion loop: ${path.map((step) => `$${step}`).join(' -> ')}` };
    }
    const text = this.raw(name);
    if (text === undefined) return { value: '' };
    this.active.push(name);
    const expanded = this.text(text);
    this.active.pop();
    const result: Expansion = expanded.problem === undefined
      ? { value: this.finish(name, expanded.value) }
      : { value: '', problem: expanded.problem };
    this.done.set(name, result);
    return result;
  }

  /** Expands every `$` form in `text` (a parameter value as written). */
  text(text: string): Expansion {
    let out = '';
    let problem: string | undefined;
    const note = (found: Expansion): string => {
      problem ??= found.problem;
      return found.value;
    };
    let index = 0;
    while (index < text.length) {
      const dollar = text.indexOf('$', index);
      if (dollar < 0) {
        out += text.slice(index);
        break;
      }
      out += text.slice(index, dollar);
      const next = text[dollar + 1];
      if (next === '$') {
        out += '$';
        index = dollar + 2;
        continue;
      }
      if (next === '{' || next === '(') {
        const close = closingBracket(text, dollar + 1);
        if (close < 0) return { value: '', problem: `unclosed "$${next}" in "${text}"` };
        const inner = text.slice(dollar + 2, close);
        const name = NAME.exec(inner)?.[0];
        if (name === undefined) return { value: '', problem: `bad parameter name in "${text.slice(dollar, close + 1)}"` };
        out += note(this.conditional(name, inner.slice(name.length), text.slice(dollar, close + 1)));
        index = close + 1;
        continue;
      }
      const name = NAME.exec(text.slice(dollar + 1))?.[0];
      if (name === undefined) {
        out += '$';
        index = dollar + 1;
        continue;
      }
      out += note(this.value(name));
      index = dollar + 1 + name.length;
    }
    return problem === undefined ? { value: out } : { value: out, problem };
  }

  /** `rest` is what follows the name inside `${…}`: '', `?value`, `:value`, `?{a}:{b}`. */
  private conditional(name: string, rest: string, whole: string): Expansion {
    const own = this.value(name);
    if (rest === '') return own;
    const set = own.value !== '';
    if (own.problem !== undefined) return own;
    const operator = rest[0];
    const operand = rest.slice(1);
    const both = /^\{(.*)\}:\{(.*)\}$/s.exec(operand);
    if (operator === '?' && both !== null) return this.text(set ? (both[1] ?? '') : (both[2] ?? ''));
    const single = operand.startsWith('{') && operand.endsWith('}') ? operand.slice(1, -1) : operand;
    if (operator === '?') return set ? this.text(single) : { value: '' };
    if (operator === ':') return set ? { value: '' } : this.text(single);
    return { value: '', problem: `bad parameter expression "${whole}"` };
  }
}

/** Index of the bracket closing the one at `open` (`{`/`(`), counting nesting; -1 if none. */
function closingBracket(text: string, open: number): number {
  const opening = text[open];
  const closing = opening === '{' ? '}' : ')';
  let depth = 0;
  for (let index = open; index < text.length; index++) {
    if (text[index] === opening) depth++;
    else if (text[index] === closing && --depth === 0) return index;
  }
  return -1;
}
