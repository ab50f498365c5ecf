// Network namespaces a test makes for itself (`ip netns`), and the commands it runs inside them.
// Every namespace made here is deleted by removeAll(), and at the latest when the process exits,
// so a failing test leaves none behind.
import { execFile, spawnSync } from 'node:child_process';

const made = new Set<string>();
process.on('exit', () => removeAll());

/** Runs a command and returns its stdout; throws with its stderr when it fails. */
export function run(cmd: string, args: string[]): string {
  const res = spawnSync(cmd, args, { encoding: 'utf8' });
  if (res.error) throw res.error;
  if (res.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${res.status}: ${res.stderr.trim()}`);
  return res.stdout;
}

/** A command inside namespace ns. */
export function inNs(ns: string, cmd: string, ...args: string[]): string {
  return run('ip', ['netns', 'exec', ns, cmd, ...args]);
}

/** The same, without blocking the test's event loop (servers in this process keep answering). */
export function inNsAsync(ns: string, cmd: string, args: string[], timeoutMs = 30_000): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile('ip', ['netns', 'exec', ns, cmd, ...args], { timeout: timeoutMs }, (err, stdout, stderr) =>
      err ? reject(new Error(`${cmd} in ${ns}: ${err.message} ${stderr}`)) : resolve(stdout),
    ),
  );
}

/** A new namespace, optionally with its loopback up (a new one has it down). */
export function addNetns(name: string, { loopback = false } = {}): string {
  run('ip', ['netns', 'add', name]);
  made.add(name);
  if (loopback) run('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
  return name;
}

/** Deletes every namespace made here (their veth pairs go with them). */
export function removeAll(): void {
  for (const name of made) spawnSync('ip', ['netns', 'del', name], { stdio: 'ignore' });
  made.clear();
}

/** A short name unique to this process and purpose (interface names have at most 15 characters). */
export function uniqueId(): string {
  return (process.pid % 100000).toString(36);
}
