import * as assert from 'uvu/assert';

/** Awaits a promise that must reject with an error of the given type, and returns that error. */
export async function rejects<T extends Error>(promise: Promise<unknown>, type: new (...args: never[]) => T): Promise<T> {
  try {
    await promise;
  } catch (err) {
    assert.instance(err, type, `expected ${type.name}, got ${(err as Error).name}: ${(err as Error).message}`);
    return err as T;
  }
  throw new Error(`expected ${type.name}, nothing was thrown`);
}

/** Runs fn, which must throw an error of the given type, and returns that error. */
export function thrown<T extends Error>(fn: () => unknown, type: new (...args: never[]) => T): T {
  try {
    fn();
  } catch (err) {
    assert.instance(err, type, `expected ${type.name}, got ${(err as Error).name}: ${(err as Error).message}`);
    return err as T;
  }
  throw new Error(`expected ${type.name}, nothing was thrown`);
}
