// App jobs as records in the control store: created in the same commit as the desired-state
// change they carry out (one running job per app), advanced as their steps run, finished with
// their outcome. An image pull's progress is kept in memory while it runs (it changes several
// times a second) and published throttled; the finished pull is committed with the job.
import { randomUUID } from 'node:crypto';
import type { ControlStore, DeepReadonly } from '../store/store.js';
import { FINISHED_JOBS_LIMIT, type ControlDocument, type JobKind, type JobRecord } from '../control-document.js';
import { AppBusyError } from './errors.js';
import { throttled, type PullProgress } from './pull-progress.js';

/** A pull's progress goes out at most 4 times a second per job. */
const PULL_EVENT_INTERVAL_MS = 250;

export interface JobBookOptions {
  store: ControlStore<ControlDocument>;
  /** Told each time a job changed (created, progressed, pulled, finished). */
  onChange: (job: JobRecord) => void;
  timestamp: () => string;
}

/** Reports one job's pulls: live progress in memory, the finished pull kept in the job. */
export interface PullReporter {
  onPull(progress: PullProgress): void;
  /** The finished pull, for the job's later progress records. */
  readonly finished: { pull?: PullProgress };
  /** Publishes what is pending and forgets the live progress. */
  close(): void;
}

export class JobBook {
  private readonly pulls = new Map<string, PullProgress>();

  constructor(private readonly options: JobBookOptions) {}

  /** Commits `change` and a new running job together; refuses while the app has another one. */
  async create(app: string, kind: JobKind, change: (draft: ControlDocument) => void | Promise<void>, extra: Pick<JobRecord, 'purge'> = {}): Promise<JobRecord> {
    const now = this.options.timestamp();
    const job: JobRecord = { id: randomUUID(), app, kind, status: 'running', ...extra, progress: { done: 0, total: 0 }, createdAt: now, updatedAt: now };
    await this.options.store.commit(async (draft) => {
      const busy = draft.jobs.find((other) => other.app === app && other.status === 'running');
      if (busy) throw new AppBusyError(app, busy.id);
      await change(draft);
      draft.jobs.push(job);
      pruneJobs(draft);
    });
    this.options.onChange(job);
    return job;
  }

  async update(id: string, change: Partial<JobRecord>): Promise<void> {
    await this.options.store.commit((draft) => {
      const job = draft.jobs.find((candidate) => candidate.id === id);
      if (job) Object.assign(job, change, { updatedAt: this.options.timestamp() });
      pruneJobs(draft);
    });
    this.publish(id);
  }

  /** Jobs a stopped daemon left running; marked resumed, to be run again. */
  async resumeInterrupted(): Promise<string[]> {
    const interrupted = this.options.store.data.jobs.filter((job) => job.status === 'running').map((job) => job.id);
    if (interrupted.length) {
      await this.options.store.commit((draft) => {
        for (const job of draft.jobs) if (interrupted.includes(job.id)) job.resumed = true;
      });
    }
    return interrupted;
  }

  list(): DeepReadonly<JobRecord[]> {
    return this.options.store.data.jobs;
  }

  get(id: string): DeepReadonly<JobRecord> | undefined {
    const job = this.options.store.data.jobs.find((candidate) => candidate.id === id);
    const pull = this.pulls.get(id);
    return job && pull ? { ...job, progress: { ...job.progress, step: 'pull-image', pull } } : job;
  }

  /** Resolves with the job once it has finished, succeeded or failed; `subscribe` is the manager's event feed. */
  waitFor(id: string, subscribe: (listener: (job: JobRecord) => void) => () => void): Promise<DeepReadonly<JobRecord>> {
    return new Promise((resolve) => {
      const check = () => {
        const job = this.get(id);
        if (job && job.status !== 'running') {
          unsubscribe();
          resolve(job);
        }
      };
      const unsubscribe = subscribe((job) => job.id === id && check());
      check();
    });
  }

  pullReporter(id: string): PullReporter {
    const publishPull = throttled(() => this.publish(id), PULL_EVENT_INTERVAL_MS);
    const finished: { pull?: PullProgress } = {};
    return {
      finished,
      onPull: (pull) => {
        this.pulls.set(id, pull);
        if (!pull.done) return publishPull.push(undefined);
        publishPull.flush();
        this.pulls.delete(id);
        finished.pull = pull;
        void this.update(id, { progress: { done: 0, total: 0, step: 'pull-image', pull } });
      },
      close: () => {
        publishPull.flush();
        this.pulls.delete(id);
      },
    };
  }

  private publish(id: string): void {
    const job = this.get(id);
    if (job) this.options.onChange(structuredClone(job) as JobRecord);
  }
}

/** Keeps every running job and the newest finished ones. */
function pruneJobs(draft: ControlDocument): void {
  const finished = draft.jobs.filter((job) => job.status !== 'running');
  const drop = new Set(finished.slice(0, Math.max(0, finished.length - FINISHED_JOBS_LIMIT)));
  draft.jobs = draft.jobs.filter((job) => !drop.has(job));
}
