// What the Apps screens share about an app: the daemon's types, where its Open links go, which
// actions make sense in its state, and job progress in words. Pure, so every screen agrees.
import type { JobRecord } from '../../../../control-document.js';
import type { AppView, ServiceEntry } from '../../../../apps/manager.js';
import type { RemoteStatus } from '../../../../remote/remote-access.js';
import { serviceUrls } from '../services/urls.js';

export type { AppView, JobRecord, ServiceEntry };
export type { InstallPreview } from '../../../../apps/spec/preview.js';

export interface CatalogItem {
  name: string;
  description: string;
  category: string;
  image: string;
}

export interface AppLink {
  listener: string;
  /** A web page to open, on the network (the proxy's public port, behind the device's sign-in). */
  localUrl?: string;
  /** The same through the relay, when remote access is on. */
  remoteUrl?: string;
  /** WebSocket or raw TCP: no page to open, an address to give a client program. */
  address?: string;
}

/**
 * An app's addresses as this browser reaches them (the Services screen's serviceUrls: the
 * ServiceEntry's own localUrl is the host-bind port, which only answers on the device itself).
 */
export function appLinks(services: readonly ServiceEntry[], remote: RemoteStatus | undefined, host?: string): AppLink[] {
  return services.map((service) => {
    const urls = serviceUrls(service, remote, host);
    return urls.openable ? { listener: service.listener, localUrl: urls.local, remoteUrl: urls.remote } : { listener: service.listener, address: urls.local };
  });
}

/** Only a running app answers on its ports: any other state would give a link that refuses. */
export function canOpen(app: Pick<AppView, 'state'>): boolean {
  return app.state === 'running';
}

export interface ActionsAllowed {
  start: boolean;
  stop: boolean;
  restart: boolean;
  uninstall: boolean;
  update: boolean;
}

/**
 * While a job works on the app (installing, starting, updating...) the daemon refuses another
 * (409 busy), so every action waits. A failed app can be started again (a new attempt) or stopped
 * (it stops retrying); a stopped one can only be started.
 */
export function actionsFor(app: Pick<AppView, 'state' | 'run'>, busy = false): ActionsAllowed {
  const working = busy || ['installing', 'starting', 'stopping', 'updating', 'removing'].includes(app.state);
  if (working) return { start: false, stop: false, restart: false, uninstall: false, update: false };
  return {
    start: app.state === 'stopped' || app.state === 'failed',
    stop: app.state === 'running' || (app.state === 'failed' && app.run === 'running'),
    restart: app.state === 'running',
    uninstall: true,
    update: true,
  };
}

/** What a person reads for an app's state, with its cause when it did not work. */
export function stateWords(app: Pick<AppView, 'state' | 'reason' | 'run'>): string | undefined {
  if (app.state === 'failed') return `Failed: ${app.reason ?? 'no reason given'}`;
  if (app.state === 'stopped') return 'Stopped: start it to use it again.';
  return app.reason;
}

const KIND_WORDS: Record<JobRecord['kind'], string> = {
  install: 'Installing',
  start: 'Starting',
  stop: 'Stopping',
  restart: 'Restarting',
  update: 'Updating',
  revert: 'Reverting',
  uninstall: 'Uninstalling',
};

const STEP_WORDS: Record<string, string> = {
  'pull-image': 'downloading the image',
  'stop-container': 'stopping the container',
  'remove-container': 'removing the old container',
  'create-network': 'creating its network',
  'remove-network': 'removing its network',
  'create-container': 'creating the container',
  'start-container': 'starting the container',
};

const DONE_WORDS: Record<JobRecord['kind'], string> = {
  install: 'Installed',
  start: 'Started',
  stop: 'Stopped',
  restart: 'Restarted',
  update: 'Updated',
  revert: 'Reverted',
  uninstall: 'Uninstalled',
};

export function jobTitle(job: Pick<JobRecord, 'kind' | 'app' | 'status'>): string {
  return `${(job.status === 'succeeded' ? DONE_WORDS : KIND_WORDS)[job.kind]} ${job.app}`;
}

/** One line on where the job is: its step, the image download in bytes, or how it ended. */
export function jobDetail(job: JobRecord, formatBytes: (n: number) => string): string {
  const { pull, step, done, total } = job.progress;
  if (job.status === 'succeeded') return pull?.totalBytes ? `Done, downloaded ${formatBytes(pull.totalBytes)} of ${pull.image}.` : 'Done.';
  if (job.status === 'failed') return `Failed: ${job.error ?? 'no reason given'}`;
  if (pull && !pull.done) {
    const layers = pull.layersTotal ? `, layer ${Math.min(pull.layersDone + 1, pull.layersTotal)} of ${pull.layersTotal}` : '';
    return `Downloading ${pull.image}: ${formatBytes(pull.currentBytes)}${pull.totalBytes ? ` of ${formatBytes(pull.totalBytes)}` : ''}${layers}`;
  }
  const doing = step ? (STEP_WORDS[step] ?? step.replace(/-/g, ' ')) : 'preparing';
  return total ? `Step ${Math.min(done + 1, total)} of ${total}: ${doing}` : `Working: ${doing}`;
}

/** The bar's value: the image download while it runs (bytes), else the steps. */
export function jobFraction(job: JobRecord): { value?: number; max?: number } {
  if (job.status !== 'running') return { value: 1, max: 1 };
  const { pull, done, total } = job.progress;
  if (pull && !pull.done && pull.totalBytes > 0) return { value: pull.currentBytes, max: pull.totalBytes };
  return total > 0 ? { value: done, max: total } : {};
}
