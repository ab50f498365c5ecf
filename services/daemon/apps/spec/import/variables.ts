// Compose's variable substitution: ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?message},
// ${VAR:+other}, $VAR and $$ (a literal $), defaults nested as compose allows (${A:-${B}}).
// Values come from a lookup, so the caller decides what is defined (Piccolo's own variables, the
// file's .env, generated secrets); a variable left undefined is reported by name, never replaced
// by an empty string behind the person's back as compose does.

export type Lookup = (name: string) => string | undefined;

/**
 * Asked only where a variable has no value and no default in the file (generated secrets):
 * ${DB_PASSWORD:-changeme} keeps the file's changeme.
 */
export interface Lookups {
  value: Lookup;
  fallback?: Lookup;
}

export interface Substitution {
  value: string;
  /** Variables used without a value and without a default; the caller names them in its error. */
  undefined: string[];
  /** ${VAR:?message} / ${VAR?message} with VAR unset: the file's own message. */
  required: { name: string; message: string }[];
}

const NAME = /^[A-Za-z_][A-Za-z0-9_]*/;

type InnerLookup = (name: string, defaulted: boolean) => string | undefined;

export function substitute(text: string, lookups: Lookups): Substitution {
  const result: Substitution = { value: '', undefined: [], required: [] };
  const lookup = (name: string, defaulted: boolean) => lookups.value(name) ?? (defaulted ? undefined : lookups.fallback?.(name));
  result.value = expand(text, lookup, result);
  result.undefined = [...new Set(result.undefined)];
  return result;
}

function expand(text: string, lookup: InnerLookup, result: Substitution): string {
  let out = '';
  let i = 0;
  while (i < text.length) {
    const dollar = text.indexOf('$', i);
    if (dollar === -1) return out + text.slice(i);
    out += text.slice(i, dollar);
    const next = text[dollar + 1];
    if (next === '$') {
      out += '$';
      i = dollar + 2;
    } else if (next === '{') {
      const close = matchingBrace(text, dollar + 1);
      if (close === -1) {
        // An unclosed ${ is kept as written, as compose would fail on it: say so by name.
        result.undefined.push(text.slice(dollar));
        return out + text.slice(dollar);
      }
      out += braced(text.slice(dollar + 2, close), lookup, result);
      i = close + 1;
    } else {
      const name = NAME.exec(text.slice(dollar + 1))?.[0];
      if (!name) {
        out += '$';
        i = dollar + 1;
      } else {
        const value = lookup(name, false);
        if (value === undefined) result.undefined.push(name);
        out += value ?? '';
        i = dollar + 1 + name.length;
      }
    }
  }
  return out;
}

/** The index of the } closing the { at `open`, counting nested ${...}. */
function matchingBrace(text: string, open: number): number {
  let depth = 0;
  for (let i = open; i < text.length; i++) {
    if (text[i] === '{') depth++;
    else if (text[i] === '}' && --depth === 0) return i;
  }
  return -1;
}

function braced(inner: string, lookup: InnerLookup, result: Substitution): string {
  const name = NAME.exec(inner)?.[0];
  if (!name) {
    result.undefined.push(`\${${inner}}`);
    return '';
  }
  const rest = inner.slice(name.length);
  const operator = /^(:?[-?+])/.exec(rest)?.[1];
  // A default or an alternative written in the file wins over a generated value.
  const value = lookup(name, operator !== undefined && operator !== ':?' && operator !== '?');
  if (rest !== '' && !operator) {
    result.undefined.push(`\${${inner}}`);
    return '';
  }
  const argument = operator ? rest.slice(operator.length) : '';
  // With the colon, an empty value counts as unset; without it, only a missing one.
  const unset = operator?.startsWith(':') ? value === undefined || value === '' : value === undefined;
  switch (operator) {
    case undefined:
      if (value === undefined) result.undefined.push(name);
      return value ?? '';
    case ':-':
    case '-':
      return unset ? expand(argument, lookup, result) : value!;
    case ':?':
    case '?':
      if (unset) result.required.push({ name, message: expand(argument, lookup, result) || 'is required' });
      return value ?? '';
    default: // :+ and +
      return unset ? '' : expand(argument, lookup, result);
  }
}

/** Reads a .env file as compose does: NAME=value lines, # comments, optional quotes, `export `. */
export function parseEnvFile(text: string): Record<string, string> {
  const values: Record<string, string> = {};
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim().replace(/^export\s+/, '');
    if (line === '' || line.startsWith('#')) continue;
    const equals = line.indexOf('=');
    if (equals <= 0) continue;
    const name = line.slice(0, equals).trim();
    let value = line.slice(equals + 1).trim();
    const quote = value[0];
    if ((quote === '"' || quote === "'") && value.endsWith(quote) && value.length >= 2) value = value.slice(1, -1);
    else value = value.replace(/\s+#.*$/, '');
    if (NAME.exec(name)?.[0] === name) values[name] = value;
  }
  return values;
}
