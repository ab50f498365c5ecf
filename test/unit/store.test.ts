import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { UnavailableError } from '../../services/common/errors.js';
import { createLogger, type Logger } from '../../services/common/logger.js';
import { describeProcess } from '../../services/daemon/store/lock.js';
import {
  ControlStore,
  LOCK_FILE_NAME,
  STORE_FILE_NAME,
  StoreCorruptError,
  StoreInUseError,
  StoreMigrationError,
  StoreSchemaTooNewError,
  StoreTooLargeError,
  type CommitEvent,
  type ControlStoreOptions,
  type Migration,
} from '../../services/daemon/store/store.js';

const WRITER = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'support', 'store-writer.ts');

interface Settings {
  name: string;
  counter: number;
  tags: string[];
  nested: { ports: Record<string, number> };
}

const initial = (): Settings => ({ name: 'piccolo', counter: 0, tags: [], nested: { ports: {} } });
const silent = createLogger({ service: 'test', write: () => {} });

function recordingLogger(lines: Record<string, unknown>[]): Logger {
  return createLogger({ service: 'test', level: 'debug', write: (line) => void lines.push(JSON.parse(line)) });
}

const createdDirs: string[] = [];

async function freshDir(): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'piccolo-store-'));
  createdDirs.push(dir);
  return dir;
}

test.after(async () => {
  await Promise.all(createdDirs.map((dir) => rm(dir, { recursive: true, force: true })));
});

function open(dir: string, overrides: Partial<ControlStoreOptions<Settings>> = {}): Promise<ControlStore<Settings>> {
  return ControlStore.open<Settings>({ dir, logger: silent, schemaVersion: 1, migrations: [], initial, ...overrides });
}

/** A closed store at rev 2 in a fresh directory, and its file's path. */
async function storeAtRev2(): Promise<{ dir: string; file: string }> {
  const dir = await freshDir();
  const store = await open(dir);
  await store.commit((d) => void (d.name = 'first'));
  await store.commit((d) => void d.tags.push('second'));
  await store.close();
  return { dir, file: path.join(dir, STORE_FILE_NAME) };
}

async function rejects<E extends Error>(promise: Promise<unknown>, type: abstract new (...args: any[]) => E): Promise<E> {
  try {
    await promise;
  } catch (err) {
    assert.instance(err, type, `expected ${type.name}, got ${(err as Error)?.name}: ${(err as Error)?.message}`);
    return err as E;
  }
  throw new assert.Assertion({ message: `expected ${type.name}, but it resolved` } as any);
}

/** Opening must fail with `type` and leave the store file byte for byte as it was. */
async function refusesUnchanged<E extends Error>(dir: string, type: abstract new (...args: any[]) => E, overrides = {}): Promise<E> {
  const file = path.join(dir, STORE_FILE_NAME);
  const before = await readFile(file);
  const err = await rejects(open(dir, overrides), type);
  assert.ok(before.equals(await readFile(file)), 'the store file changed');
  assert.not.ok(existsSync(path.join(dir, LOCK_FILE_NAME)), 'the lock was not released');
  return err;
}

test('creates the store from initial() at rev 0 and reopens it', async () => {
  const dir = await freshDir();
  const store = await open(dir);
  assert.is(store.rev, 0);
  assert.equal(store.data, initial());
  await store.close();
  const onDisk = JSON.parse(await readFile(path.join(dir, STORE_FILE_NAME), 'utf8'));
  assert.equal({ format: onDisk.format, schemaVersion: onDisk.schemaVersion, rev: onDisk.rev }, { format: 1, schemaVersion: 1, rev: 0 });
  assert.match(onDisk.checksum, /^[0-9a-f]{64}$/);
  const reopened = await open(dir, { initial: () => assert.unreachable('initial() on an existing store') as never });
  assert.is(reopened.rev, 0);
  await reopened.close();
});

test('creates its own directory, but not a missing parent (an unmounted volume)', async () => {
  const volume = await freshDir();
  const store = await open(path.join(volume, 'store'));
  assert.is(store.rev, 0);
  await store.close();
  await rejects(open(path.join(volume, 'not-mounted', 'store')), UnavailableError);
  assert.not.ok(existsSync(path.join(volume, 'not-mounted')));
});

test('each commit bumps rev by one, resolves with it and survives a reopen', async () => {
  const dir = await freshDir();
  const store = await open(dir);
  assert.is(await store.commit((d) => void (d.name = 'one')), 1);
  assert.is(await store.commit((d) => void (d.nested.ports.web = 8080)), 2);
  assert.is(await store.commit(async (d) => void d.tags.push(await Promise.resolve('async'))), 3);
  assert.is(store.rev, 3);
  await store.close();
  const reopened = await open(dir);
  assert.is(reopened.rev, 3);
  assert.equal(reopened.data, { name: 'one', counter: 0, tags: ['async'], nested: { ports: { web: 8080 } } });
  await reopened.close();
});

test('data is deeply frozen; a commit edits a copy', async () => {
  const store = await open(await freshDir());
  const before = store.data;
  assert.throws(() => ((before as Settings).nested.ports.x = 1), TypeError);
  assert.throws(() => (before as Settings).tags.push('x'), TypeError);
  await store.commit((d) => void (d.nested.ports.x = 1));
  assert.equal(before.nested.ports, {});
  assert.is(store.data.nested.ports.x, 1);
  assert.ok(Object.isFrozen(store.data.nested.ports));
  await store.close();
});

test('a byte flipped in data is a checksum mismatch; the file is left as it was', async () => {
  const { dir, file } = await storeAtRev2();
  const text = await readFile(file, 'utf8');
  await writeFile(file, text.replace('"first"', '"firsT"'));
  const err = await refusesUnchanged(dir, StoreCorruptError);
  assert.is(err.reason, 'checksum_mismatch');
});

test('a truncated file is refused and its bytes stay unchanged', async () => {
  const { dir, file } = await storeAtRev2();
  await truncate(file, Math.floor((await readFile(file)).length / 2));
  const err = await refusesUnchanged(dir, StoreCorruptError);
  assert.is(err.reason, 'truncated');
  assert.is(err.status, 503);
});

test('an empty file, non-JSON and an unknown format are corrupt too', async () => {
  const cases: [string, string][] = [
    ['', 'empty'],
    ['{"format":1,"schemaVersion":1} trailing}', 'not_json'],
    ['\u00ff\u00fe not json }', 'not_json'],
    ['[1,2,3]', 'bad_shape'],
    [JSON.stringify({ format: 2, schemaVersion: 1, rev: 0, checksum: '0'.repeat(64), data: {} }), 'unknown_format'],
    [JSON.stringify({ format: 1, schemaVersion: 1, rev: -1, checksum: '0'.repeat(64), data: {} }), 'bad_shape'],
  ];
  for (const [content, reason] of cases) {
    const dir = await freshDir();
    await writeFile(path.join(dir, STORE_FILE_NAME), content);
    const err = await refusesUnchanged(dir, StoreCorruptError);
    assert.is(err.reason, reason, `for ${JSON.stringify(content)}`);
  }
});

test('migrations run in order before open() returns, and the result is committed', async () => {
  const { dir, file } = await storeAtRev2();
  const calls: string[] = [];
  const migrations: Migration[] = [
    (data) => {
      calls.push('1→2');
      return { ...data, counter: data.counter + 10 };
    },
    (data) => {
      calls.push('2→3');
      data.tags.push('migrated'); // editing the input in place is allowed: it is a copy
      return { ...data, counter: data.counter * 2 };
    },
  ];
  const store = await open(dir, { schemaVersion: 3, migrations });
  assert.equal(calls, ['1→2', '2→3']);
  assert.is(store.rev, 3);
  assert.is(store.data.counter, 20);
  assert.equal(store.data.tags, ['second', 'migrated']);
  await store.close();
  const onDisk = JSON.parse(await readFile(file, 'utf8'));
  assert.equal({ schemaVersion: onDisk.schemaVersion, rev: onDisk.rev, counter: onDisk.data.counter }, { schemaVersion: 3, rev: 3, counter: 20 });
  await (await open(dir, { schemaVersion: 3, migrations })).close();
  assert.is(calls.length, 2, 'migrations ran again on a migrated store');
});

test('a migration that throws leaves the file unchanged', async () => {
  const { dir } = await storeAtRev2();
  const migrations: Migration[] = [
    () => {
      throw new Error('bad migration');
    },
  ];
  const err = await refusesUnchanged(dir, StoreMigrationError, { schemaVersion: 2, migrations });
  assert.is(err.fromVersion, 1);
});

test('a schemaVersion newer than the code knows is refused, file unchanged', async () => {
  const { dir } = await storeAtRev2();
  const store = await open(dir, { schemaVersion: 2, migrations: [(data) => data] });
  await store.close();
  const err = await refusesUnchanged(dir, StoreSchemaTooNewError);
  assert.equal([err.foundVersion, err.knownVersion], [2, 1]);
});

test('the migration list must match the schema version', async () => {
  await rejects(open(await freshDir(), { schemaVersion: 3, migrations: [(data) => data] }), TypeError);
});

test('a mutator that throws (or makes non-JSON or too much) changes nothing', async () => {
  const { dir, file } = await storeAtRev2();
  const store = await open(dir, { maxBytes: 4096 });
  const before = await readFile(file);
  const data = store.data;
  const boom = await rejects(
    store.commit((d) => {
      d.name = 'half done';
      throw new Error('boom');
    }),
    Error,
  );
  assert.is(boom.message, 'boom');
  await rejects(store.commit(async (d) => void (d.counter = NaN)), Error);
  await rejects(store.commit((d) => void (d.name = 'x'.repeat(5000))), StoreTooLargeError);
  assert.is(store.rev, 2);
  assert.is(store.data, data);
  assert.ok(before.equals(await readFile(file)));
  assert.is(await store.commit((d) => void (d.counter = 1)), 3, 'the queue works on after failures');
  await store.close();
});

test('subscribers get every rev in order, after it is durable; unsubscribe stops them', async () => {
  const dir = await freshDir();
  const store = await open(dir);
  const events: CommitEvent<Settings>[] = [];
  const onDisk: number[] = [];
  const unsubscribe = store.subscribe((event) => {
    events.push(event);
    // Listeners run synchronously: what the file holds right now is what was made durable.
    onDisk.push(JSON.parse(readFileSync(path.join(dir, STORE_FILE_NAME), 'utf8')).rev);
  });
  store.subscribe(() => {
    throw new Error('a broken listener does not break commits');
  });
  await Promise.all([1, 2, 3].map((n) => store.commit((d) => void (d.counter = n))));
  assert.equal(
    events.map((e) => [e.rev, e.data.counter]),
    [
      [1, 1],
      [2, 2],
      [3, 3],
    ],
  );
  assert.equal(onDisk, [1, 2, 3]);
  unsubscribe();
  await store.commit((d) => void (d.counter = 4));
  assert.is(events.length, 3);
  await store.close();
});

test('50 parallel commits are serialized: no lost update', async () => {
  const store = await open(await freshDir());
  const revs = await Promise.all(
    Array.from({ length: 50 }, () =>
      store.commit(async (d) => {
        const seen = d.counter;
        await new Promise((r) => setImmediate(r)); // yield mid-update, where a race would lose one
        d.counter = seen + 1;
      }),
    ),
  );
  assert.equal(revs, Array.from({ length: 50 }, (_, i) => i + 1));
  assert.is(store.data.counter, 50);
  assert.is(store.rev, 50);
  await store.close();
});

test('close() waits for queued commits, then refuses new ones and releases the lock', async () => {
  const dir = await freshDir();
  const store = await open(dir);
  const pending = store.commit((d) => void (d.counter = 7));
  await store.close();
  assert.is(await pending, 1);
  await rejects(store.commit(() => {}), UnavailableError);
  assert.not.ok(existsSync(path.join(dir, LOCK_FILE_NAME)));
  await store.close();
});

test('a second writer in the same process is refused', async () => {
  const dir = await freshDir();
  const store = await open(dir);
  const err = await rejects(open(dir), StoreInUseError);
  assert.is(err.holderPid, process.pid);
  await store.close();
  await (await open(dir)).close();
});

test('a second writer process is refused', async () => {
  const dir = await freshDir();
  const child = spawn(process.execPath, ['--import', 'tsx', WRITER, dir, '--hold'], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    const ready = await new Promise<string>((resolve, reject) => {
      createInterface({ input: child.stdout! }).once('line', resolve);
      child.once('close', (code) => reject(new Error(`store-writer exited (${code}) before it was ready`)));
    });
    assert.is(ready, 'ready 0');
    const err = await rejects(open(dir), StoreInUseError);
    assert.is(err.holderPid, child.pid);
    assert.match(err.message, new RegExp(`pid ${child.pid}`));
  } finally {
    child.kill('SIGKILL');
    await new Promise((resolve) => child.on('close', resolve));
  }
  // Killed without closing: its lock is now stale and the next writer takes over.
  await (await open(dir)).close();
});

test('a stale lock is taken over: dead pid, previous boot, reused pid, garbage', async () => {
  const deadPid = await new Promise<number>((resolve) => {
    const child = spawn(process.execPath, ['-e', '']);
    child.on('close', () => resolve(child.pid!));
  });
  const me = await describeProcess(process.pid);
  const locks = {
    'dead pid': { ...me, pid: deadPid },
    'previous boot': { ...me, bootId: 'another-boot' },
    'reused pid': { ...me, startTime: '1' },
    garbage: 'not a lock',
  };
  for (const [what, lock] of Object.entries(locks)) {
    const { dir } = await storeAtRev2();
    await writeFile(path.join(dir, LOCK_FILE_NAME), typeof lock === 'string' ? lock : JSON.stringify(lock));
    await writeFile(path.join(dir, `${LOCK_FILE_NAME}.${deadPid}.0123456789ab`), 'abandoned side file');
    const logs: Record<string, unknown>[] = [];
    const store = await open(dir, { logger: recordingLogger(logs) });
    assert.is(store.rev, 2, what);
    assert.ok(logs.some((l) => l.msg === 'taking over a stale control store lock'), what);
    assert.equal((await readdir(dir)).sort(), [LOCK_FILE_NAME, STORE_FILE_NAME].sort(), what);
    await store.close();
  }
});

test('temp files left by a crash are removed at open and never read', async () => {
  const { dir } = await storeAtRev2();
  await writeFile(path.join(dir, `.${STORE_FILE_NAME}.a1b2c3d4e5f6.tmp`), '{"half a write');
  const logs: Record<string, unknown>[] = [];
  const store = await open(dir, { logger: recordingLogger(logs) });
  assert.is(store.rev, 2);
  assert.equal((await readdir(dir)).sort(), [LOCK_FILE_NAME, STORE_FILE_NAME].sort());
  assert.ok(logs.some((l) => l.msg === 'removed leftover control store temp files' && l.count === 1));
  await store.close();
});

test.run();
