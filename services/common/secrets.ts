import { timingSafeEqual } from 'node:crypto';

/** Compares two secrets in constant time (for equal lengths), so timing leaks nothing. */
export function equalSecrets(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
