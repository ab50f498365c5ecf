// Remote access on the daemon's side. It follows the control store (the `remote` settings and the
// installed apps' listeners) and the device secret in the bootstrap volume, and from them keeps:
// - the RemoteTable the tunnel long-polls (internal socket, GET /v1/remote?wait=<rev>);
// - the proxy's route table with the remote names added, and the ACME certificates;
// - the certificate manager's list of names.
// All of it needs the vault unlocked; after a reboot the TPM unlock alone brings it back.
import { EventEmitter } from 'node:events';
import path from 'node:path';
import { UnavailableError } from '../../common/errors.js';
import type { Module } from '../../common/lifecycle.js';
import type { Logger } from '../../common/logger.js';
import type { RemoteTable, TunnelStatus } from '../../common/remote-contract.js';
import type { CertificatePair, PortalRoute, Route } from '../../common/route-table.js';
import type { ControlDocument } from '../control-document.js';
import type { DeepReadonly } from '../store/store.js';
import type { Vault, VaultState } from '../vault.js';
import type { CertificateInfo, CertificateManager } from './acme/certificate-manager.js';
import { DeviceSecretFile } from './device-secret.js';
import { remoteNames, withRemoteNames, type AppListener, type RemoteMode, type RemoteName } from './remote-names.js';
import { parseTunnelStatus } from './tunnel-status.js';
import { checkRemoteConfig, type RemoteConfigInput, type RemoteSettings } from './settings.js';
import { SerialQueue } from '../../common/serial-queue.js';

/** A connected tunnel repeats its status every 5 s; this long without one, it has gone quiet (hung or gone). */
export const TUNNEL_QUIET_MS = 30_000;

/** What this module uses of the ACME certificate manager. */
export type CertificateSource = Pick<CertificateManager, 'start' | 'stop' | 'setNames' | 'inventory' | 'renew' | 'current' | 'challengeAnswer'>;

export interface RemoteStatus {
  configured: boolean;
  enabled: boolean;
  relayUrl: string | null;
  portalHostname: string | null;
  appDomain: string | null;
  deviceSecretSet: boolean;
  hostnames: RemoteName[];
  /** reporting false: never heard from, or gone quiet while it said connected (the last status then comes along). */
  tunnel: { reporting: boolean; receivedAt?: string; status?: TunnelStatus };
  certificates: CertificateInfo[];
}

export interface RemoteAccessOptions {
  vault: Pick<Vault, 'state' | 'controlStore' | 'bootstrapDir' | 'assertUnlocked'>;
  logger: Logger;
  now: () => number;
  /** Where the proxy's route table goes: the local routes with the remote names, and the certificates. */
  publishRoutes: (table: { portal: PortalRoute | null; routes: Route[]; certificates: CertificatePair[] }) => void;
  /** Whether this node serves an app's remote names itself (leadership); call refresh() when it changes. */
  modeFor?: (app: string) => RemoteMode;
  /** Makes the certificate manager once the bootstrap volume is open; `dir` is inside it. */
  certificates?: (options: { dir: string; onChange: () => void }) => CertificateSource;
  /** Told the status whenever it changes (the events stream relays it to the portal). */
  onStatus?: (status: RemoteStatus) => void;
}

/** Opened while the vault is unlocked. */
interface OpenState {
  secretFile: DeviceSecretFile;
  secret: string | undefined;
  settings: RemoteSettings | undefined;
  listeners: AppListener[];
  certificates: CertificateSource | undefined;
  unsubscribe: () => void;
}

export class RemoteAccess extends EventEmitter implements Module {
  readonly name = 'remote';
  private table: RemoteTable;
  private open: OpenState | undefined;
  private portal: PortalRoute | null = null;
  private appRoutes: Route[] = [];
  private tunnel: { receivedAt: number; status: TunnelStatus } | undefined;
  /** Opening, closing and changing the settings, one at a time. */
  private readonly queue = new SerialQueue();

  constructor(private readonly options: RemoteAccessOptions) {
    super();
    // The rev starts at the clock, so a restarted daemon never answers with a rev a tunnel still holds.
    this.table = { rev: options.now(), enabled: false, routes: [] };
  }

  /** The table for the tunnel (RouteSource-shaped: InternalApi long-polls it). */
  current(): RemoteTable {
    return this.table;
  }

  async start(): Promise<void> {
    if (this.options.vault.state === 'unlocked') await this.queue.run(() => this.openState());
  }

  async stop(): Promise<void> {
    await this.queue.run(() => this.closeState());
  }

  /** Resolves once an opening under way (just after an unlock) is done, so a request then does not get a 503. */
  async opened(): Promise<void> {
    if (!this.open && this.options.vault.state === 'unlocked') await this.queue.idle();
  }

  /** Wired to the vault's state changes; never awaited inside the vault's own work. */
  readonly onVaultState = (state: VaultState): void => {
    void this.queue.run(() => (state === 'unlocked' ? this.openState() : this.closeState())).catch((err) =>
      this.options.logger.error('remote access could not follow the vault', { state, err }),
    );
  };

  setPortal(portal: PortalRoute): void {
    this.portal = portal;
    this.publishRoutes();
  }

  /** The apps' proxy routes as the apps runtime publishes them. */
  setAppRoutes(routes: Route[]): void {
    this.appRoutes = routes;
    this.publishRoutes();
  }

  /** Recomputes after something modeFor() reads has changed (an app's leadership role). */
  refresh(): void {
    this.rebuild();
  }

  async configure(input: RemoteConfigInput): Promise<RemoteStatus> {
    const checked = checkRemoteConfig(input);
    return this.queue.run(async () => {
      const open = this.requireOpen();
      // The secret first: a store that says enabled always has its secret on disk.
      await open.secretFile.write(input.deviceSecret);
      open.secret = input.deviceSecret;
      await this.options.vault.controlStore.commit((doc) => void (doc.remote = { ...checked, enabled: true }));
      this.options.logger.info('remote access configured', { relayUrl: checked.relayUrl, portalHostname: checked.portalHostname, appDomain: checked.appDomain });
      return this.status();
    });
  }

  /** Stops remote access; the settings (and the secret) stay, so configure can turn it back on. */
  async disable(): Promise<RemoteStatus> {
    return this.queue.run(async () => {
      this.requireOpen();
      await this.options.vault.controlStore.commit((doc) => {
        if (doc.remote) doc.remote.enabled = false;
      });
      this.options.logger.info('remote access disabled');
      return this.status();
    });
  }

  /** The stored settings (for a preflight without a body), or undefined. */
  get settings(): RemoteSettings | undefined {
    return this.requireOpen().settings;
  }

  status(): RemoteStatus {
    const { settings, secret, listeners, certificates } = this.requireOpen();
    return {
      configured: settings !== undefined,
      enabled: this.table.enabled,
      relayUrl: settings?.relayUrl ?? null,
      portalHostname: settings?.portalHostname ?? null,
      appDomain: settings?.appDomain ?? null,
      deviceSecretSet: secret !== undefined,
      hostnames: this.table.enabled ? remoteNames(settings!, listeners, this.modeFor) : [],
      tunnel: this.tunnelView(),
      certificates: certificates?.inventory() ?? [],
    };
  }

  /** A status the tunnel pushed: checked (a 400 names the field), kept and announced. */
  recordTunnelStatus(body: unknown): TunnelStatus {
    const status = parseTunnelStatus(body);
    this.tunnel = { receivedAt: this.options.now(), status };
    this.announce();
    return status;
  }

  get certificates(): CertificateSource | undefined {
    return this.requireOpen().certificates;
  }

  /** For the internal API's HTTP-01 route: works whenever a certificate manager runs. */
  challengeAnswer(token: string): string | undefined {
    return this.open?.certificates?.challengeAnswer(token);
  }

  private tunnelView(): RemoteStatus['tunnel'] {
    if (!this.tunnel) return { reporting: false };
    const { receivedAt, status } = this.tunnel;
    const quiet = status.state === 'connected' && this.options.now() - receivedAt > TUNNEL_QUIET_MS;
    return { reporting: !quiet, receivedAt: new Date(receivedAt).toISOString(), status };
  }

  private readonly modeFor = (app: string): RemoteMode => this.options.modeFor?.(app) ?? 'local';

  private async openState(): Promise<void> {
    if (this.open) return;
    const { vault, logger } = this.options;
    const store = vault.controlStore;
    const secretFile = new DeviceSecretFile(path.join(vault.bootstrapDir, 'remote'));
    const open: OpenState = { secretFile, secret: await secretFile.read(), settings: undefined, listeners: [], certificates: undefined, unsubscribe: () => {} };
    open.certificates = this.options.certificates?.({ dir: path.join(vault.bootstrapDir, 'acme'), onChange: () => this.onCertificatesChange() });
    await open.certificates?.start();
    this.open = open;
    open.unsubscribe = store.subscribe(({ data }) => this.follow(data));
    this.follow(store.data);
    if (open.settings?.enabled && open.secret === undefined) logger.error('remote access is enabled but its device secret is missing; configure it again');
  }

  private async closeState(): Promise<void> {
    const open = this.open;
    if (!open) return;
    this.open = undefined;
    open.unsubscribe();
    await open.certificates?.stop();
    this.rebuild();
  }

  /** A store commit: rebuilds only when the remote settings or the apps' listeners changed. */
  private follow(data: DeepReadonly<ControlDocument>): void {
    const open = this.open;
    if (!open) return;
    const settings = data.remote ? { ...data.remote } : undefined;
    const listeners = Object.entries(data.apps).flatMap(([app, record]) =>
      record.spec.listeners.map((l): AppListener => ({ app, listener: l.name, flow: l.flow, protocol: l.protocol })),
    );
    if (JSON.stringify([settings, listeners]) === JSON.stringify([open.settings, open.listeners])) return;
    open.settings = settings;
    open.listeners = listeners;
    this.rebuild();
  }

  private rebuild(): void {
    const open = this.open;
    const enabled = open?.settings?.enabled === true && open.secret !== undefined;
    const names = enabled ? remoteNames(open.settings!, open.listeners, this.modeFor) : [];
    const next: Omit<RemoteTable, 'rev'> = enabled
      ? { enabled, relayUrl: open.settings!.relayUrl, deviceSecret: open.secret, routes: names.map(({ tls: _tls, ...route }) => route) }
      : { enabled: false, routes: [] };
    const { rev, ...previous } = this.table;
    if (JSON.stringify(next) !== JSON.stringify(previous)) {
      this.table = { rev: rev + 1, ...next };
      this.options.logger.info('remote table', { rev: this.table.rev, enabled, names: names.length });
      this.emit('changed');
    }
    // Disabled, the certificates stay: turning remote access back on must not order them again
    // (CAs rate-limit repeated orders for the same names).
    if (enabled) {
      try {
        open.certificates?.setNames(names.filter((name) => name.tls === 'device').map((name) => name.hostname));
      } catch (err) {
        // A name the CA cannot validate: the others still go to the tunnel and the proxy.
        this.options.logger.error('could not ask for the certificates', { err });
      }
    }
    this.publishRoutes();
    this.announce();
  }

  private onCertificatesChange(): void {
    this.publishRoutes();
    this.announce();
  }

  private publishRoutes(): void {
    const settings = this.table.enabled ? this.open?.settings : undefined;
    const certificates = this.open?.certificates?.current() ?? [];
    try {
      this.options.publishRoutes({ ...withRemoteNames(this.portal, this.appRoutes, settings), certificates });
    } catch (err) {
      this.options.logger.error('could not publish routes to the proxy', { err });
    }
  }

  private announce(): void {
    if (this.open) this.options.onStatus?.(this.status());
  }

  private requireOpen(): OpenState {
    if (this.open) return this.open;
    this.options.vault.assertUnlocked();
    throw new UnavailableError('remote access is starting; try again in a moment');
  }
}
