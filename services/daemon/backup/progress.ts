// What a backup or a restore reports as it runs: on the events stream (backup.progress,
// restore.progress) and, for a restore, at GET /api/v1/restore/status. No imports: the portal reads it too.
export interface BackupProgress {
  kind: 'backup' | 'restore';
  state: 'running' | 'succeeded' | 'failed';
  /** What is being copied now: "control", a volume name, or "finishing". */
  step: string;
  /** Archive bytes written (backup) or read (restore) so far. */
  bytes: number;
  /** Restore: the upload's size, when the client said it. */
  totalBytes?: number;
  /** Failed: why, as the API answered it. */
  error?: { code: string; message: string };
  /** Succeeded: the apps the archive holds. */
  apps?: string[];
}
