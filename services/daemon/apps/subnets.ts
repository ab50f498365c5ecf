// Each app's network gets its own /24 from a /16 pool, chosen by the daemon rather than the
// engine so that it is part of the desired state: the address of an app's container (.2), and so
// the URLs given to its dependents, stay the same across restarts and network re-creation.
// Several daemons may share one engine (tests, `make run` beside them): each search starts at a
// point of its own, so two installs at the same moment rarely reach for the same /24.
import { SubnetsExhaustedError } from './errors.js';

export const DEFAULT_SUBNET_POOL = '10.201.0.0/16';

/**
 * The first /24 of `pool` (an a.b.0.0/16), from the `startAt`-th one on and wrapping around,
 * that overlaps none of `taken` (any CIDRs).
 */
export function allocateSubnet(pool: string, taken: readonly string[], startAt = 0): string {
  const [base, prefix] = pool.split('/');
  const [a, b] = base!.split('.').map(Number);
  if (prefix !== '16') throw new TypeError(`subnet pool must be a /16, got ${pool}`);
  for (let i = 0; i < 256; i++) {
    const candidate = `${a}.${b}.${(startAt + i) % 256}.0/24`;
    if (!overlapsAny(candidate, taken)) return candidate;
  }
  throw new SubnetsExhaustedError(pool);
}

/**
 * The engine refused a network because its subnet is in use: Podman says "subnet 10.201.7.0/24 is
 * already used on the host or by another config", Docker "Pool overlaps with other one on this
 * address space". Dependents skipped for such an app carry the same words.
 */
export function isSubnetTaken(err: unknown): boolean {
  return /subnet \S+ is already used|pool overlaps/i.test(err instanceof Error ? err.message : String(err));
}

/** Whether `cidr` shares an address with any of `others`. */
export function overlapsAny(cidr: string, others: readonly string[]): boolean {
  return others.some((other) => overlaps(cidr, other));
}

function overlaps(x: string, y: string): boolean {
  const [xStart, xEnd] = range(x);
  const [yStart, yEnd] = range(y);
  return xStart <= yEnd && yStart <= xEnd;
}

function range(cidr: string): [number, number] {
  const [address, bits = '32'] = cidr.split('/');
  const value = address!.split('.').reduce((sum, octet) => sum * 256 + Number(octet), 0);
  const size = 2 ** (32 - Number(bits));
  const start = value - (value % size);
  return [start, start + size - 1];
}
