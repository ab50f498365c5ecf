// Runs an external tool (tpm2-tools, gocryptfs, fusermount) without a shell. Secrets go in on
// stdin and come out on stdout, never on the command line, which any local user can read in /proc.
import { spawn } from 'node:child_process';

export interface ToolResult {
  /** null when the tool was killed (see signal). */
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: Buffer;
  stderr: string;
  timedOut: boolean;
}

export interface RunToolOptions {
  stdin?: Uint8Array | string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  timeoutMs?: number;
}

/** A daemonizing tool (gocryptfs) leaves a child that may keep our pipes open after it exits. */
const PIPE_GRACE_MS = 500;

/** Resolves with the outcome whatever the exit code; rejects only when the tool cannot be started. */
export function runTool(file: string, args: string[], options: RunToolOptions = {}): Promise<ToolResult> {
  const { stdin, env, cwd, timeoutMs = 30_000 } = options;
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { env, cwd, stdio: ['pipe', 'pipe', 'pipe'] });
    const stdoutChunks: Buffer[] = [];
    let stderr = '';
    let timedOut = false;
    let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
    let settled = false;

    const finish = () => {
      if (settled || !exit) return;
      settled = true;
      clearTimeout(timer);
      clearTimeout(graceTimer);
      child.stdout.destroy();
      child.stderr.destroy();
      const stdout = Buffer.concat(stdoutChunks);
      // The chunks may hold an unsealed secret: do not leave copies for the garbage collector.
      for (const chunk of stdoutChunks) chunk.fill(0);
      resolve({ ...exit, stdout, stderr, timedOut });
    };

    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    let graceTimer: NodeJS.Timeout | undefined;

    child.stdout.on('data', (chunk: Buffer) => stdoutChunks.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    child.on('error', (err) => {
      clearTimeout(timer);
      if (!settled) {
        settled = true;
        reject(err);
      }
    });
    child.on('exit', (code, signal) => {
      exit = { code, signal };
      graceTimer = setTimeout(finish, PIPE_GRACE_MS);
    });
    child.on('close', finish);

    // A tool that exits before reading its input makes the write fail with EPIPE; the exit code says why.
    child.stdin.on('error', () => {});
    child.stdin.end(stdin ?? '');
  });
}

/** The last lines of a tool's stderr, for error details: enough to diagnose, short enough to report. */
export function stderrTail(stderr: string, lines = 4): string {
  return stderr.trim().split('\n').slice(-lines).join('\n');
}
