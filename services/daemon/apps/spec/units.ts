// Sizes and durations as people write them in app.yaml ("256Mi", "50GB", "30s") or compose ("64m"). The JSON Schema
// carries the same grammar as a pattern; these turn a value that passed it into a number.

// A Map, not an object literal: a unit such as "constructor" must not find Object's prototype.
const SIZE_UNITS = new Map<string, number>([
  ['', 1],
  ['B', 1],
  ['K', 1e3],
  ['KB', 1e3],
  ['M', 1e6],
  ['MB', 1e6],
  ['G', 1e9],
  ['GB', 1e9],
  ['T', 1e12],
  ['TB', 1e12],
  ['Ki', 2 ** 10],
  ['KiB', 2 ** 10],
  ['Mi', 2 ** 20],
  ['MiB', 2 ** 20],
  ['Gi', 2 ** 30],
  ['GiB', 2 ** 30],
  ['Ti', 2 ** 40],
  ['TiB', 2 ** 40],
  // compose's (Docker's) units: lower case, powers of 1024 ("64m" is 64 MiB).
  ['b', 1],
  ['k', 2 ** 10],
  ['kb', 2 ** 10],
  ['m', 2 ** 20],
  ['mb', 2 ** 20],
  ['g', 2 ** 30],
  ['gb', 2 ** 30],
  ['t', 2 ** 40],
  ['tb', 2 ** 40],
]);

const SIZE = /^(\d+(?:\.\d+)?)([A-Za-z]*)$/;

/** "256Mi" → 268435456, "512M" → 512000000; undefined when the text is not a size. */
export function parseSize(text: string): number | undefined {
  const match = SIZE.exec(text);
  const unit = match ? SIZE_UNITS.get(match[2]!) : undefined;
  if (!match || unit === undefined) return undefined;
  return Math.floor(Number(match[1]) * unit);
}

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

const DURATION = /^(?:\d+(?:ms|s|m|h))+$/;

/** "1m30s" → 90000 (milliseconds); undefined when the text is not a duration. */
export function parseDuration(text: string): number | undefined {
  if (!DURATION.test(text)) return undefined;
  let total = 0;
  for (const [, amount, unit] of text.matchAll(/(\d+)(ms|s|m|h)/g)) total += Number(amount) * DURATION_UNITS[unit!]!;
  return total;
}
