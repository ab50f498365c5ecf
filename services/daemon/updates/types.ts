// The OS update area's shapes, shared by the daemon and the portal (type-only imports there).

export interface OsSnapshot {
  number: number;
  /** ISO time, or undefined when snapper gave none. */
  date?: string;
  description: string;
  /** The snapshot the system runs now. */
  current: boolean;
  /** The snapshot the next boot starts. */
  default: boolean;
  /** snapper's userdata important=yes: kept by the cleanup longer. */
  important: boolean;
}

export type RunResult = 'running' | 'updated' | 'up-to-date' | 'failed' | 'timed-out' | 'interrupted';

/** One `transactional-update dup`, started by this device's owner through the API. */
export interface OsUpdateRun {
  startedAt: string;
  /** The transient unit it runs in (one per run, so its journal is its own). */
  unit?: string;
  finishedAt?: string;
  result: RunResult;
  /** The default snapshot before the run. */
  fromSnapshot?: number;
  /** The new default snapshot the run made (result updated). */
  snapshot?: number;
  exitCode?: number | null;
  /** In words: what happened, or why it failed. */
  message?: string;
}

export interface OsRollback {
  at: string;
  /** The default snapshot before the rollback. */
  from: number;
  to: number;
}

export interface OsUpdateProgress {
  /** 0-100 from zypper's (n/total) counters: downloads are the first half, installs the second. */
  percent?: number;
  phase: 'preparing' | 'downloading' | 'installing' | 'finishing';
  line?: string;
}

/** The `os.update` event: progress while a run goes, then the finished run. */
export interface OsUpdateEvent {
  state: 'running' | 'finished';
  progress?: OsUpdateProgress;
  run: OsUpdateRun;
}

export type OsUpdateStatus =
  | { available: false; reason: string }
  | {
      available: true;
      version?: string;
      currentSnapshot?: number;
      defaultSnapshot?: number;
      /** A newer snapshot waits for a reboot (the default is not the one running). */
      rebootPending: boolean;
      snapshots: OsSnapshot[];
      /** The root file system as findmnt sees it. */
      root?: { source: string; fstype: string; readOnly: boolean };
      /** The run going now, with its last progress. */
      running?: { run: OsUpdateRun; progress?: OsUpdateProgress };
      lastRun?: OsUpdateRun;
      lastRollback?: OsRollback;
      /** The last update's snapshot is neither running nor next: rolled back, by the owner or by health-checker after a failed boot. */
      rolledBack?: { snapshot: number; by: 'owner' | 'automatic'; runningSnapshot?: number };
      /** systemctl show of the last run's unit. */
      unit?: { name: string; activeState: string; result: string };
      /** The last run's journal, oldest line first. */
      journal: string[];
    };
