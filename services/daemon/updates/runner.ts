// Runs the OS update tools (transactional-update, snapper, tukit, systemd-run, systemctl,
// journalctl, findmnt) without a shell, looked up on one search path. The manager gets a runner
// through its options, so tests put the documented fakes first on that path
// (test/fixtures/os-update-fake/), and an image without the tools is told apart from a failing tool.
import { spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { runTool } from '../../common/run-tool.js';

export interface CommandResult {
  code: number | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

export interface StreamOptions {
  timeoutMs: number;
  /** Each line of stdout and stderr, as it comes. */
  onLine: (line: string, stream: 'stdout' | 'stderr') => void;
  /** Ends the tool (a follower such as journalctl -f) when aborted. */
  signal?: AbortSignal;
}

export interface CommandRunner {
  /** The tool's full path on the search path, or undefined when this image has none. */
  which(tool: string): string | undefined;
  run(tool: string, args: string[], timeoutMs?: number): Promise<CommandResult>;
  /** For long work (an update): lines as they come; resolves when the tool exits or is killed at the timeout. */
  stream(tool: string, args: string[], options: StreamOptions): Promise<CommandResult>;
}

/** A tool that is not on the search path: the caller decides whether that is an error. */
export class ToolMissingError extends Error {
  constructor(readonly tool: string) {
    super(`${tool} is not installed on this image`);
  }
}

/** searchPath: a PATH-style list; the tools' children (transactional-update's zypper) get it as PATH too. */
export function pathRunner(searchPath: string, env: NodeJS.ProcessEnv = process.env): CommandRunner {
  const dirs = searchPath.split(':').filter(Boolean);
  const childEnv = { ...env, PATH: searchPath, LANG: 'C', LC_ALL: 'C' };
  const which = (tool: string) => {
    for (const dir of dirs) {
      const file = path.join(dir, tool);
      try {
        accessSync(file, constants.X_OK);
        return file;
      } catch {}
    }
    return undefined;
  };
  const resolve = (tool: string) => {
    const file = which(tool);
    if (!file) throw new ToolMissingError(tool);
    return file;
  };
  return {
    which,
    async run(tool, args, timeoutMs = 30_000) {
      const result = await runTool(resolve(tool), args, { env: childEnv, timeoutMs });
      return { code: result.code, stdout: result.stdout.toString('utf8'), stderr: result.stderr, timedOut: result.timedOut };
    },
    stream(tool, args, { timeoutMs, onLine, signal }) {
      const file = resolve(tool);
      return new Promise((done, fail) => {
        const child = spawn(file, args, { env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
        let stdout = '';
        let stderr = '';
        let timedOut = false;
        const timer = setTimeout(() => {
          timedOut = true;
          child.kill('SIGKILL');
        }, timeoutMs);
        createInterface({ input: child.stdout }).on('line', (line) => ((stdout += `${line}\n`), onLine(line, 'stdout')));
        createInterface({ input: child.stderr }).on('line', (line) => ((stderr += `${line}\n`), onLine(line, 'stderr')));
        signal?.addEventListener('abort', () => child.kill('SIGTERM'), { once: true });
        child.on('error', (err) => (clearTimeout(timer), fail(err)));
        child.on('close', (code) => (clearTimeout(timer), done({ code, stdout, stderr, timedOut })));
      });
    },
  };
}
