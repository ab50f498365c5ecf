// The control store's document: the device's own control data. Only desired state lives here
// (what should be installed and running, and the ports each app keeps); what actually runs is
// always read back from the container engine. Each schema change adds a migration from the
// previous version.
import type { PullProgress } from './apps/pull-progress.js';
import type { AppSpec } from './apps/spec/types.js';
import { upgradeAppRecords } from './apps/spec/upgrade.js';
import type { RemoteSettings } from './remote/settings.js';

export const CONTROL_SCHEMA_VERSION = 4;

/** How many previous specs of an app are kept for revert. */
export const APP_HISTORY_LIMIT = 5;
/** Finished jobs kept for the API; running ones are always kept. */
export const FINISHED_JOBS_LIMIT = 50;

export type DesiredRunState = 'running' | 'stopped';

export interface PortAllocation {
  /** Published by the engine on 127.0.0.1 only (15000-25000). */
  hostBind: number;
  /** Where the proxy exposes the listener to the network (35000-45000). */
  public: number;
}

export interface AppRevision {
  revision: number;
  spec: AppSpec;
  /** When this revision was installed. */
  at: string;
  /** Its images as they were pinned (runtime), so a revert or a failed update's rollback runs the same versions. */
  images?: Record<string, PinnedImage>;
  /** Its grants, restored with it. */
  granted?: string[];
}

export interface AppRecord {
  spec: AppSpec;
  /** Grows by one on every install, update and revert; labels the containers made from it. */
  revision: number;
  installedAt: string;
  updatedAt: string;
  run: DesiredRunState;
  /** Previous revisions, newest first, at most APP_HISTORY_LIMIT. */
  history: AppRevision[];
  /** By listener name; kept for as long as the app is installed, so its ports survive restarts and updates. */
  ports: Record<string, PortAllocation>;
  /** The app's own network (IPv4 CIDR); fixed, so the URLs its dependents are given stay valid. */
  subnet: string;
  /**
   * Permission ids (apps/spec/permissions.ts) the person granted at install or update, with a
   * typed confirmation. Optional so records written before grants read as "none granted".
   */
  granted?: string[];
  /**
   * Each service's image as pulled, by service name (runtime): a restart or a daemon update never
   * changes an app's version silently (a tag may move on; the ID and digest stay). Optional:
   * pinned at the app's first reconcile.
   */
  images?: Record<string, PinnedImage>;
}

export interface PinnedImage {
  /** The reference in the spec when it was pinned; a new reference (an update) resolves again. */
  ref: string;
  /** The engine's image ID. */
  id: string;
  /** repo@sha256:... from the registry, when the image came from one. */
  digest?: string;
}

export type JobKind = 'install' | 'start' | 'stop' | 'restart' | 'update' | 'revert' | 'uninstall';
export type JobStatus = 'running' | 'succeeded' | 'failed';

export interface JobRecord {
  id: string;
  app: string;
  kind: JobKind;
  status: JobStatus;
  /** Uninstall's purge flag: the one job parameter not already in the desired state. */
  purge?: boolean;
  /** Steps done out of steps planned; the plan is only known once the job runs. */
  progress: { done: number; total: number; step?: string; pull?: PullProgress };
  error?: string;
  /** Set when a daemon restart found the job running and took it over. */
  resumed?: boolean;
  createdAt: string;
  updatedAt: string;
}

export interface ControlDocument {
  /** name: set by a person (PUT /api/v1/system/device); absent, PICCOLO_DEVICE_NAME applies. Optional, so no schema change. */
  device: { createdAt: string; name?: string };
  apps: Record<string, AppRecord>;
  /** Oldest first. */
  jobs: JobRecord[];
  /** Remote access through a relay; null until configured. Its device secret is not here (remote/device-secret.ts). */
  remote: RemoteSettings | null;
  auth: AuthSettings;
  /**
   * Secrets generated for an app's variables (APP_PASSWORD, ${DB_PASSWORD}...), by app name, then
   * variable: made once, reused by updates, removed on purge (apps/spec/import/secrets.ts).
   * Optional, so no schema change.
   */
  appSecrets?: Record<string, Record<string, string>>;
}

/** Auth facts every node must follow (the password itself lives in each node's key ring). */
export interface AuthSettings {
  /** When the admin password last changed: sessions from before it end on every node. */
  passwordChangedAt?: string;
  /** Second factor (auth/second-factor/): optional fields, so no schema bump. Absent = not enrolled. */
  totp?: TotpRecord;
  /** sha-256 (hex) of each unused recovery code; a used one is removed. */
  recoveryCodes?: string[];
  passkeys?: PasskeyRecord[];
}

export interface TotpRecord {
  /** Base32. The store lives in the encrypted control volume. */
  secret: string;
  enabledAt: string;
  /** The 30 s time step of the last code accepted: that step and older ones are refused (replay). */
  lastStep: number;
}

export interface PasskeyRecord {
  /** The credential id, base64url. */
  id: string;
  /** COSE public key, base64url. */
  publicKey: string;
  /** The authenticator's signature counter (0 for authenticators that keep none). */
  counter: number;
  transports: string[];
  name: string;
  /** The host name it was registered on: a passkey works only there. */
  rpId: string;
  createdAt: string;
  lastUsedAt: string | null;
}

export function initialControlDocument(): ControlDocument {
  return { device: { createdAt: new Date().toISOString() }, apps: {}, jobs: [], remote: null, auth: {} };
}

/** CONTROL_MIGRATIONS[i] turns a version i+1 document into version i+2. */
export const CONTROL_MIGRATIONS: ((doc: any) => unknown)[] = [
  // v1 → v2: the app platform (apps with their ports and history, jobs).
  (doc) => ({ ...doc, apps: {}, jobs: [] }),
  // v2 → v3: remote access and auth settings.
  (doc) => ({ ...doc, remote: null, auth: {} }),
  // v3 → v4: multi-container apps: each stored spec gains services (its image becomes the one service "app").
  (doc) => ({ ...doc, apps: upgradeAppRecords(doc.apps) }),
];
