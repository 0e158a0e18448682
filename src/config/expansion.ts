/*
 * expansion — postconf(5) parameter expansion: `$name`, `${name}`, `$(name)`,
 * `${name?value}`, `${name?{value}}`, `${name:value}`, `${name:{value}}`,
 * `${name?{value1}:{value2}}`, and `$$` for a single `$`.
 *
 * Decides: expansion is recursive (a value's own `$names` are expanded too, memoized per
 * name), an undefined name expands to the empty string as in Postfix, a loop
 * (a = $b, b = $a) is reported by its members with its path and expands to empty, an
 * unclosed `${` is a problem; a parameter that uses a broken one is marked `broken`, not
 * reported again; a `$` followed by anything else stays a literal `$`.
 * Leaves to others: where raw values come from (configured, then catalogue default) and
 * any fix-up after expansion such as an empty myhostname (config.ts).
 * Bugs: no `${name==value?…}` comparison forms (Postfix 3.5).
 */

/** The expanded text, or why it could not be expanded (a loop path or a syntax error). */
export interface Expansion {
  readonly value: string;
  readonly problem?: string;
  /** For a loop: the names in it (only they report it; names that use them see ''). */
  readonly loop?: readonly string[];
  /** Set when a referenced parameter has a problem (reported there): the value is unreliable. */
  readonly broken?: boolean;
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
      return { value: '', problem: `parameter expansion loop: ${path.map((step) => `$${step}`).join(' -> ')}`, loop: path };
    }
    const text = this.raw(name);
    if (text === undefined) return { value: '' };
    this.active.push(name);
    const expanded = this.text(text);
    this.active.pop();
    let result: Expansion = { value: this.finish(name, expanded.value) };
    if (expanded.problem !== undefined) {
      const reports = expanded.loop === undefined || expanded.loop.includes(name);
      result = reports ? { value: '', problem: expanded.problem, ...(expanded.loop && { loop: expanded.loop }) } : { value: '', broken: true };
    } else if (expanded.broken === true) {
      result = { value: '', broken: true };
    }
    this.done.set(name, result);
    return result;
  }

  /** Expands every `$` form in `text` (a parameter value as written). */
  text(text: string): Expansion {
    let out = '';
    let problem: Expansion | undefined;
    let broken = false;
    /** A referenced parameter reports its own problems; only a loop travels up to its members. */
    const note = (found: Expansion, referenced: boolean): string => {
      if (found.problem !== undefined && (!referenced || found.loop !== undefined)) problem ??= found;
      else if (found.problem !== undefined || found.broken === true) broken = true;
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
        out += note(this.conditional(name, inner.slice(name.length), text.slice(dollar, close + 1)), false);
        index = close + 1;
        continue;
      }
      const name = NAME.exec(text.slice(dollar + 1))?.[0];
      if (name === undefined) {
        out += '$';
        index = dollar + 1;
        continue;
      }
      out += note(this.value(name), true);
      index = dollar + 1 + name.length;
    }
    if (problem !== undefined) return { ...problem, value: out };
    return broken ? { value: out, broken } : { value: out };
  }

  /** `rest` is what follows the name inside `${…}`: '', `?value`, `:value`, `?{a}:{b}`. */
  private conditional(name: string, rest: string, whole: string): Expansion {
    const own = this.value(name);
    if (own.problem !== undefined && own.loop !== undefined) return own;
    if (own.problem !== undefined || own.broken === true) return { value: '', broken: true };
    if (rest === '') return own;
    const set = own.value !== '';
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
