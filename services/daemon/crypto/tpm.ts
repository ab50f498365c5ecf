// Sealing a small secret to this machine's TPM under a PCR policy, through tpm2-tools (no
// maintained Node TPM library exists). The secret goes in on stdin and comes back on stdout.
//
// Each operation recreates the same primary key under the owner hierarchy (a primary is derived
// from the hierarchy seed and the template, so the same template gives the same key) instead of
// persisting one in NV: nothing to provision, nothing to leak between devices.
// Without a resource manager (swtpm in tests, or /dev/tpm0) transient objects and sessions stay
// loaded after a tool exits and the TPM runs out of slots after a few: every step is followed by
// flushing them. Operations are serialized, since the flush would also drop a concurrent step's.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Logger } from '../../common/logger.js';
import { TpmError } from './errors.js';
import { runTool, stderrTail, type ToolResult } from '../../common/run-tool.js';
import { SerialQueue } from '../../common/serial-queue.js';

/** A sealed secret as stored in the key ring: the TPM's public and (TPM-encrypted) private parts. */
export interface SealedBlob {
  /** The PCR selection the policy binds to, e.g. "sha256:7". */
  pcrs: string;
  public: string;
  private: string;
}

/** What the key ring needs from a TPM; tests of the key ring may pass a fake. */
export interface SecretSealer {
  seal(secret: Uint8Array): Promise<SealedBlob>;
  /** undefined when the PCRs no longer match the policy; throws on any other failure. */
  unseal(blob: SealedBlob): Promise<Buffer | undefined>;
}

export interface TpmOptions {
  /** e.g. "device:/dev/tpmrm0" on a device, "swtpm:host=127.0.0.1,port=2321" in tests. */
  tcti: string;
  /**
   * Parent of the private temp folder each operation's context files live in (default: the
   * system temp dir). They hold no secret in the clear: the sealed secret never touches a file.
   */
  workDir?: string;
  logger: Logger;
  /** PCR bank and indexes the policy binds to. PCR 7 holds the Secure Boot state. */
  pcrs?: string;
  /** Folder holding the tpm2_* tools; by default they are found on PATH. */
  toolsDir?: string;
  timeoutMs?: number;
}

export const DEFAULT_PCRS = 'sha256:7';

// The primary's template: must never change, or existing blobs no longer load.
const PRIMARY_ARGS = ['-C', 'o', '-g', 'sha256', '-G', 'ecc', '-c', 'primary.ctx'];
// Explicit so that a tools version with other defaults cannot add userwithauth, which would let
// anyone unseal with an empty password and bypass the PCR policy.
const SEALED_OBJECT_ATTRIBUTES = 'fixedtpm|fixedparent';
// TPM_RC_POLICY_FAIL (0x09D) on session n is reported as 0x09D | 0x800 | n << 8 (0x99D for the
// first session); tpm2-tools also prints its text.
const POLICY_FAILED = /a policy check failed|\b0x0*[89a-f]9d\b|TPM2?_RC_POLICY_FAIL/i;

export class Tpm implements SecretSealer {
  private readonly pcrs: string;
  private readonly queue = new SerialQueue();

  constructor(private readonly options: TpmOptions) {
    this.pcrs = options.pcrs ?? DEFAULT_PCRS;
  }

  /** True when the TCTI reaches a TPM that answers. */
  async available(): Promise<boolean> {
    try {
      const result = await this.tool('tpm2_getcap', ['properties-fixed']);
      return result.code === 0;
    } catch {
      return false;
    }
  }

  seal(secret: Uint8Array): Promise<SealedBlob> {
    return this.queue.run(() =>
      this.inTempDir(async (dir) => {
        await this.step('createprimary', dir, PRIMARY_ARGS);
        await this.step('createpolicy', dir, ['--policy-pcr', '-l', this.pcrs, '-L', 'policy.digest']);
        await this.step('create', dir, ['-C', 'primary.ctx', '-L', 'policy.digest', '-a', SEALED_OBJECT_ATTRIBUTES, '-i', '-', '-u', 'seal.pub', '-r', 'seal.priv'], secret);
        const [pub, priv] = await Promise.all([readFile(path.join(dir, 'seal.pub')), readFile(path.join(dir, 'seal.priv'))]);
        return { pcrs: this.pcrs, public: pub.toString('base64'), private: priv.toString('base64') };
      }),
    );
  }

  unseal(blob: SealedBlob): Promise<Buffer | undefined> {
    return this.queue.run(() =>
      this.inTempDir(async (dir) => {
        await writeFile(path.join(dir, 'seal.pub'), Buffer.from(blob.public, 'base64'), { mode: 0o600 });
        await writeFile(path.join(dir, 'seal.priv'), Buffer.from(blob.private, 'base64'), { mode: 0o600 });
        await this.step('createprimary', dir, PRIMARY_ARGS);
        await this.step('load', dir, ['-C', 'primary.ctx', '-u', 'seal.pub', '-r', 'seal.priv', '-c', 'seal.ctx']);
        const result = await this.tool('tpm2_unseal', ['-c', 'seal.ctx', '-p', `pcr:${blob.pcrs}`], { cwd: dir });
        await this.flush(dir);
        if (result.code === 0) return result.stdout;
        result.stdout.fill(0);
        if (POLICY_FAILED.test(result.stderr)) return undefined;
        throw new TpmError('unseal', describeFailure(result));
      }),
    );
  }

  /** Runs one tool, flushes what it left loaded, and throws TpmError when the tool failed. */
  private async step(name: string, dir: string, args: string[], stdin?: Uint8Array): Promise<void> {
    const result = await this.tool(`tpm2_${name}`, ['-Q', ...args], { cwd: dir, stdin });
    await this.flush(dir);
    if (result.code !== 0) throw new TpmError(name, describeFailure(result));
  }

  private async flush(dir: string): Promise<void> {
    for (const kind of ['-t', '-l']) {
      const result = await this.tool('tpm2_flushcontext', [kind], { cwd: dir });
      if (result.code !== 0) this.options.logger.warn('tpm2_flushcontext failed', { kind, stderr: stderrTail(result.stderr) });
    }
  }

  private async tool(name: string, args: string[], extra: { cwd?: string; stdin?: Uint8Array } = {}): Promise<ToolResult> {
    const file = this.options.toolsDir ? path.join(this.options.toolsDir, name) : name;
    try {
      return await runTool(file, args, {
        ...extra,
        timeoutMs: this.options.timeoutMs ?? 30_000,
        // The TCTI by environment rather than -T: every tool accepts it the same way.
        env: { PATH: process.env.PATH, TPM2TOOLS_TCTI: this.options.tcti },
      });
    } catch (err) {
      throw new TpmError(name, `cannot run ${file}: ${(err as Error).message}`);
    }
  }

  private async inTempDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
    // mkdtemp creates the folder 0700: the context files are readable by root only.
    const dir = await mkdtemp(path.join(this.options.workDir ?? tmpdir(), 'piccolo-tpm-'));
    try {
      return await fn(dir);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }
}

function describeFailure(result: ToolResult): string {
  if (result.timedOut) return 'timed out';
  const exit = result.code === null ? `killed by ${result.signal}` : `exit code ${result.code}`;
  return `${exit}: ${stderrTail(result.stderr) || 'no message'}`;
}
