// Who makes the local CA and signs the device certificates for the cert store. The proxy runs the
// work in a child process (cert-maker.ts): loading @peculiar/x509 and its WebCrypto work leave
// ~8 MiB of heap behind in a long-running process, which the proxy of a device set up once would
// carry until its next restart; the child's exit gives it all back. In-process serves tests and tools.
import { spawn, type ChildProcess } from 'node:child_process';
import type { CertificateRequest, IssuedCertificates } from './local-ca.js';

export interface CertificateAuthority {
  issue(request: CertificateRequest): Promise<IssuedCertificates>;
  /** Lets go of what it holds (a waiting child). */
  close(): void;
}

/** Under the guest's CPU emulation a first boot's CA takes seconds; this bounds a stuck child. */
const CHILD_TIMEOUT_MS = 120_000;
/**
 * How long the child waits for another request before it ends. A first boot asks twice within
 * seconds (the CA with localhost, then the device's names from the first route table), and each
 * start of Node and the library took 5-10 s in the TCG guest's first boot.
 */
const CHILD_IDLE_MS = 20_000;

export const inProcessAuthority: CertificateAuthority = {
  issue: async (request) => (await import('./local-ca.js')).makeCertificates(request),
  close: () => {},
};

/** Runs script (the bundled cert-maker.mjs) with this process's Node, one child for requests close together. */
export function childProcessAuthority(script: string, { node = process.execPath, idleMs = CHILD_IDLE_MS } = {}): CertificateAuthority {
  let maker: MakerChild | undefined;
  return {
    issue: (request) => {
      if (!maker || maker.ended) maker = new MakerChild(node, script, idleMs);
      return maker.issue(request);
    },
    close: () => maker?.end(),
  };
}

interface Pending {
  resolve: (made: IssuedCertificates) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

/** One cert-maker child: a request per line on its stdin, an answer per line on its stdout, in order. */
class MakerChild {
  ended = false;
  private readonly child: ChildProcess;
  private readonly pending: Pending[] = [];
  private output = '';
  private stderr = '';
  private idleTimer: NodeJS.Timeout | undefined;

  constructor(node: string, script: string, private readonly idleMs: number) {
    this.child = spawn(node, [script], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.child.stdout!.setEncoding('utf8').on('data', (text: string) => this.read(text));
    this.child.stderr!.setEncoding('utf8').on('data', (text: string) => (this.stderr = (this.stderr + text).slice(-16_384)));
    // A write to a child that died fails here too; its exit says why.
    this.child.stdin!.on('error', () => {});
    this.child.on('error', (err) => this.failAll(err.message));
    this.child.on('close', (code, signal) => this.failAll(signal ? `killed by ${signal}` : `exited with code ${code}`));
  }

  issue(request: CertificateRequest): Promise<IssuedCertificates> {
    clearTimeout(this.idleTimer);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => this.child.kill('SIGKILL'), CHILD_TIMEOUT_MS);
      this.pending.push({ resolve, reject, timer });
      this.child.stdin!.write(JSON.stringify(request) + '\n');
    });
  }

  end(): void {
    this.ended = true;
    clearTimeout(this.idleTimer);
    this.child.stdin!.end();
  }

  private read(text: string): void {
    this.output += text;
    for (let newline = this.output.indexOf('\n'); newline >= 0; newline = this.output.indexOf('\n')) {
      const line = this.output.slice(0, newline);
      this.output = this.output.slice(newline + 1);
      const next = this.pending.shift();
      if (!next) continue;
      clearTimeout(next.timer);
      let answer: { made?: IssuedCertificates; error?: string };
      try {
        answer = JSON.parse(line);
      } catch {
        next.reject(new Error('the certificate maker answered something other than JSON'));
        continue;
      }
      if (answer.made) next.resolve(answer.made);
      else next.reject(new Error(`the certificate maker failed: ${answer.error ?? 'no answer'}`));
    }
    if (this.pending.length === 0) this.idleTimer = setTimeout(() => this.end(), this.idleMs);
  }

  private failAll(reason: string): void {
    this.ended = true;
    clearTimeout(this.idleTimer);
    // Node prints an uncaught error's stack: its first "...Error: message" line says what went wrong.
    const why = /^\w*Error\b.*$/m.exec(this.stderr)?.[0] ?? (this.stderr.trim() || reason);
    for (const { reject, timer } of this.pending.splice(0)) {
      clearTimeout(timer);
      reject(new Error(`the certificate maker failed: ${why}`));
    }
  }
}
