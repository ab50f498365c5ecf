// The desired-state side of each app job: what the job's store commit changes in the control
// document (jobs.ts commits it together with the job record). The checks that must see every
// other app (dependencies, container names, host labels) and the port and subnet choices run
// inside that commit: commits are serialized, so two installs at once cannot both pass.
import type { DeepReadonly } from '../store/store.js';
import { APP_HISTORY_LIMIT, type AppRecord, type AppRevision, type ControlDocument } from '../control-document.js';
import { ConflictError } from '../../common/errors.js';
import type { Allocator } from './allocation.js';
import { containerNames } from './container-spec.js';
import { dependencyNodes } from './converge.js';
import { checkDependencies } from './dependencies.js';
import { AppExistsError, AppNotFoundError, RevisionNotFoundError } from './errors.js';
import { withDependencies } from './order.js';
import { assertHostLabelsFree } from './routes-from-apps.js';
import type { AppSpec } from './spec/types.js';

export interface DesiredChangesOptions {
  allocator: Allocator;
  timestamp: () => string;
}

export class DesiredChanges {
  constructor(private readonly options: DesiredChangesOptions) {}

  async install(draft: ControlDocument, spec: AppSpec, granted?: string[]): Promise<void> {
    if (draft.apps[spec.name]) throw new AppExistsError(spec.name);
    checkDependencies({ ...specsOf(draft), [spec.name]: spec });
    assertNamesFree(draft, spec);
    const now = this.options.timestamp();
    draft.apps[spec.name] = {
      spec,
      revision: 1,
      installedAt: now,
      updatedAt: now,
      run: 'running',
      history: [],
      ports: await this.options.allocator.portsFor(draft, spec, {}),
      subnet: await this.options.allocator.subnetFor(draft),
      ...(granted?.length ? { granted: [...granted].sort() } : {}),
    };
  }

  /** The app and whatever it depends on should run. */
  start(draft: ControlDocument, name: string): void {
    mustExist(draft, name);
    for (const app of withDependencies(name, dependencyNodes(draft))) draft.apps[app]!.run = 'running';
  }

  setRun(draft: ControlDocument, name: string, run: AppRecord['run']): void {
    mustExist(draft, name).run = run;
  }

  update(draft: ControlDocument, name: string, spec: AppSpec, granted?: string[]): Promise<void> {
    return this.replaceSpec(draft, name, spec, granted);
  }

  /** A kept revision comes back with the images and grants it had. */
  revert(draft: ControlDocument, name: string, revision: number): Promise<void> {
    const record = mustExist(draft, name);
    const target = record.history.find((entry) => entry.revision === revision);
    if (!target) throw new RevisionNotFoundError(name, revision, record.history.map((entry) => entry.revision));
    return this.replaceSpec(draft, name, target.spec, target.granted, target.images);
  }

  /** Refused while another app depends on it. */
  uninstall(draft: ControlDocument, name: string): void {
    mustExist(draft, name);
    const rest = specsOf(draft);
    delete rest[name];
    checkDependencies(rest);
    delete draft.apps[name];
  }

  /**
   * The new spec becomes the current revision; the current one goes to the history with its
   * pinned images and grants, so a rollback or revert brings back exactly that. Images of
   * services whose reference did not change stay pinned.
   */
  private async replaceSpec(draft: ControlDocument, name: string, spec: AppSpec, granted?: string[], images?: AppRecord['images']): Promise<void> {
    const record = mustExist(draft, name);
    if (spec.name !== name) throw new AppNotFoundError(spec.name);
    checkDependencies({ ...specsOf(draft), [name]: spec });
    assertNamesFree(draft, spec);
    const previous: AppRevision = { revision: record.revision, spec: record.spec, at: record.updatedAt };
    if (record.images) previous.images = record.images;
    if (record.granted) previous.granted = record.granted;
    record.history = [previous, ...record.history].slice(0, APP_HISTORY_LIMIT);
    record.ports = await this.options.allocator.portsFor(draft, spec, record.ports);
    const kept = images ?? Object.fromEntries(spec.services.flatMap((service) => {
      const pinned = record.images?.[service.name];
      return pinned && pinned.ref === service.image ? [[service.name, pinned]] : [];
    }));
    if (Object.keys(kept).length) record.images = kept;
    else delete record.images;
    if (granted) record.granted = [...granted].sort();
    record.spec = spec;
    record.revision += 1;
    record.updatedAt = this.options.timestamp();
  }
}

function mustExist(draft: ControlDocument, name: string): AppRecord {
  const record = draft.apps[name];
  if (!record) throw new AppNotFoundError(name);
  return record;
}

/**
 * The names an app takes that others may already hold: its containers' and its listeners' host
 * names. Checked in the same store commit that records the app, so two installs at once cannot
 * both pass (the commits are serialized, and each sees the other's result).
 */
function assertNamesFree(draft: ControlDocument, spec: AppSpec): void {
  assertContainerNamesFree(draft, spec);
  assertHostLabelsFree(spec, Object.entries(draft.apps).map(([name, record]) => ({ name, spec: record.spec })));
}

/**
 * piccolo-<app>-<service> may be another app's short-form name (app "web" with a service "db"
 * and an app "web-db"): the engine would refuse the second, so the install is refused up front.
 */
function assertContainerNamesFree(draft: ControlDocument, spec: AppSpec): void {
  const mine = new Set(containerNames(spec));
  for (const [other, record] of Object.entries(draft.apps)) {
    if (other === spec.name) continue;
    const clash = containerNames(record.spec).find((name) => mine.has(name));
    if (clash) throw new ConflictError(`the container name ${clash} is taken by app ${other}; rename the app or its service`, { container: clash, app: other });
  }
}

function specsOf(doc: DeepReadonly<ControlDocument> | ControlDocument): Record<string, AppSpec> {
  return Object.fromEntries(Object.entries(doc.apps).map(([name, record]) => [name, record.spec as AppSpec]));
}
