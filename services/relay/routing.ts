// Route keys and backend pools (§5): a key is a normalized hostname, a wildcard `*.suffix`, or a
// port claim `tcp:N`; several backends may claim one key and share it by weighted round robin.

/** The keys a name is looked up under, in order: the exact name, then the wildcard of its parent. */
export function lookupKeys(name: string): string[] {
  const dot = name.indexOf('.');
  return dot > 0 ? [name, `*${name.slice(dot)}`] : [name];
}

export function portKey(port: number): string {
  return `tcp:${port}`;
}

export function udpPortKey(port: number): string {
  return `udp:${port}`;
}

interface PoolEntry<T> {
  member: T;
  weight: number;
  /** Smooth weighted round robin (as nginx): the entry with the highest running score goes next. */
  score: number;
}

export class RoutePools<T> {
  private readonly pools = new Map<string, PoolEntry<T>[]>();

  /** Claims every key for member; a weight ≤ 0 counts as 1 (§1.2). */
  add(member: T, keys: readonly string[], weight: number): void {
    for (const key of keys) {
      const pool = this.pools.get(key) ?? [];
      pool.push({ member, weight: weight > 0 ? weight : 1, score: 0 });
      this.pools.set(key, pool);
    }
  }

  remove(member: T): void {
    for (const [key, pool] of this.pools) {
      const rest = pool.filter((entry) => entry.member !== member);
      if (rest.length) this.pools.set(key, rest);
      else this.pools.delete(key);
    }
  }

  /** The next member for the first of these keys that anyone claims. */
  pick(keys: readonly string[]): T | undefined {
    for (const key of keys) {
      const pool = this.pools.get(key);
      if (pool) return next(pool);
    }
    return undefined;
  }
}

function next<T>(pool: PoolEntry<T>[]): T {
  let total = 0;
  let best = pool[0]!;
  for (const entry of pool) {
    entry.score += entry.weight;
    total += entry.weight;
    if (entry.score > best.score) best = entry;
  }
  best.score -= total;
  return best.member;
}
