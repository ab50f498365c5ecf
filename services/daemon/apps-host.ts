// Apps exist only while the vault is unlocked: their specs live in the control store and their
// data in encrypted volumes. The host starts the app manager on unlock and suspends it before a
// lock (containers hold their volumes); desired states are kept, so unlocking brings apps back.
import { UnavailableError } from '../common/errors.js';
import type { HealthReporter } from '../common/health-report.js';
import type { Module } from '../common/lifecycle.js';
import type { Logger } from '../common/logger.js';
import type { EventHub } from './api/events.js';
import type { Engine } from './apps/engine.js';
import type { LiveEngineState } from './apps/live-state.js';
import { AppManager } from './apps/manager.js';
import type { AppLeadership } from './cluster/app-leadership.js';
import { routesFromRecords } from './apps/routes-from-apps.js';
import type { Route } from '../common/route-table.js';
import type { Vault, VaultState } from './vault.js';

export interface AppsHostOptions {
  engine: Engine;
  /** The engine's state kept in memory, which the manager follows while apps are open. */
  live: LiveEngineState;
  /** Told the proxy's routes whenever apps change (and [] while apps are unavailable). */
  onRoutes: (routes: Route[]) => void;
  /** The device's current name: app host names are <listener>-<app>.<name>.local. */
  deviceName: () => string;
  /** Which apps this node runs and serves: those it leads. */
  leadership: AppLeadership;
  vault: Vault;
  health: HealthReporter;
  hub: EventHub;
  logger: Logger;
}

export class AppsHost implements Module {
  readonly name = 'apps';
  private manager: AppManager | undefined;
  private opening: Promise<void> | undefined;
  private stopFollowingRoles: (() => void) | undefined;
  private stopFollowingCommits: (() => void) | undefined;
  /** What the proxy was last told, so a commit that changes no route tells it nothing. */
  private publishedRoutes = '';

  constructor(private readonly options: AppsHostOptions) {}

  /** Whether the app manager runs (the device is unlocked and apps have started). */
  get running(): boolean {
    return this.manager !== undefined;
  }

  /** The running manager, or the reason apps are not available right now. */
  get apps(): AppManager {
    if (this.manager) return this.manager;
    this.options.vault.assertUnlocked();
    throw new UnavailableError('apps are starting; try again in a moment');
  }

  /** Wired to the vault's state changes; never awaited inside the vault's own work. */
  readonly onVaultState = (state: VaultState): void => {
    if (state !== 'unlocked' || this.manager || this.opening) return;
    this.opening = this.open()
      .catch((err) => {
        // The device still works without apps (portal, storage); say why they are missing.
        this.options.logger.error('apps could not start', { err });
        this.options.health.set('daemon.apps', 'degraded', `apps unavailable: ${(err as Error).message}`);
      })
      .finally(() => (this.opening = undefined));
  };

  async start(): Promise<void> {
    if (this.options.vault.state === 'unlocked') this.onVaultState('unlocked');
  }

  /** Daemon stop: apps keep running; the next daemon takes them over by their labels. */
  async stop(): Promise<void> {
    await this.opening;
    this.stopFollowingRoles?.();
    this.stopFollowingRoles = undefined;
    this.stopFollowingCommits?.();
    this.stopFollowingCommits = undefined;
    await this.manager?.close();
    this.manager = undefined;
    this.publishedRoutes = '';
    this.options.onRoutes([]);
  }

  /** Before the vault locks: stop every app container, keeping what each app should be doing. */
  async suspend(): Promise<void> {
    // Without a manager, this daemon started no app: nothing to stop.
    const wasRunning = this.manager !== undefined || this.opening !== undefined;
    await this.stop();
    if (!wasRunning) return;
    const { engine, logger, vault } = this.options;
    try {
      // Only this device's apps: another daemon on the same engine (tests, `make run`) keeps its own.
      const ours = new Set(Object.keys(vault.controlStore.data.apps));
      for (const container of (await engine.state()).containers) {
        if (container.running && ours.has(container.app)) await engine.stopContainer(container.id);
      }
    } catch (err) {
      // Safe to go on: a container still holding its volume makes the lock refuse (busy).
      logger.warn('could not stop app containers before the lock', { err });
    }
  }

  /** Publishes the routes again after something they are made from changed outside the apps (the device name). */
  refreshRoutes(): void {
    if (this.manager) this.publishRoutes();
  }

  /** The routes follow the store's records (each commit), not the engine: a listener's route does not depend on its container. */
  private publishRoutes(): void {
    try {
      const routes = this.options.leadership.servedLocally(routesFromRecords(this.options.vault.controlStore.data.apps, this.options.deviceName()));
      const text = JSON.stringify(routes);
      if (text === this.publishedRoutes) return;
      this.publishedRoutes = text;
      this.options.onRoutes(routes);
    } catch (err) {
      this.options.logger.error('could not publish routes to the proxy', { err });
    }
  }

  private async open(): Promise<void> {
    const { vault, engine, live, logger, health, hub, leadership } = this.options;
    const manager = new AppManager({
      store: vault.controlStore,
      engine,
      live,
      logger: logger.child({ module: 'apps' }),
      volumes: {
        ensure: (app) => vault.ensureAppVolume(app),
        remove: (app) => vault.removeAppVolume(app),
        close: (app) => vault.closeAppVolume(app),
        limit: (app, volume, bytes, field) => vault.limitAppFolder(app, volume, bytes, field),
        media: (folder) => vault.ensureMediaFolder(folder),
      },
      health: { set: (component, state, reason) => health.set(`daemon.${component}`, state, reason) },
      effectiveRun: leadership.effectiveRun,
    });
    manager.subscribe((event) => hub.publish(event.type === 'job' ? 'job.progress' : event.type === 'health' ? 'app.health' : 'app.state', event));
    // Followed from before open()'s first reconcile, so no change is missed. The route goes (or
    // comes back) at once; the container follows when the manager gets to it.
    const stopFollowingRoles = leadership.onAppRoleChange((app) => {
      this.publishRoutes();
      void manager.converge(app);
    });
    const stopFollowingCommits = vault.controlStore.subscribe(() => this.publishRoutes());
    try {
      await manager.open();
    } catch (err) {
      stopFollowingRoles();
      stopFollowingCommits();
      throw err;
    }
    this.stopFollowingRoles = stopFollowingRoles;
    this.stopFollowingCommits = stopFollowingCommits;
    this.manager = manager;
    this.publishRoutes();
    logger.info('apps started');
  }
}
