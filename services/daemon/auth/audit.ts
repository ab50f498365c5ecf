// The audit log: one JSON line per auth or crypto event, outside the encrypted volumes so that it
// also records what happens while the device is locked. Never holds a secret: callers pass only
// event names, outcomes and client addresses.
import { appendFile } from 'node:fs/promises';
import type { Logger } from '../../common/logger.js';

export type AuditOutcome = 'ok' | 'denied' | 'error';

export interface AuditEntry {
  event: string;
  outcome: AuditOutcome;
  client?: string;
  detail?: string;
}

export class AuditLog {
  constructor(private readonly options: { file: string; logger: Logger; now: () => number }) {}

  /** Where the entries are (system/audit-tail.ts reads its tail for the API). */
  get file(): string {
    return this.options.file;
  }

  async record(entry: AuditEntry): Promise<void> {
    const line = JSON.stringify({ ts: new Date(this.options.now()).toISOString(), ...entry }) + '\n';
    this.options.logger.info('audit', { ...entry });
    try {
      await appendFile(this.options.file, line, { mode: 0o600 });
    } catch (err) {
      this.options.logger.error('audit log write failed', { err });
    }
  }
}
