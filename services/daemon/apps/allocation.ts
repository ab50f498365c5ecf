// What each app is given on the host: its listeners' ports and its network's /24. Chosen inside
// the store commit that records the app, from what the store and the engine say is taken. Another
// daemon on the same engine may take the same thing between the choice and its use; the apps
// refused that way move to a free one and converge again (retryTaken).
import { randomInt } from 'node:crypto';
import { networkInterfaces } from 'node:os';
import type { Logger } from '../../common/logger.js';
import type { ControlStore } from '../store/store.js';
import type { AppRecord, ControlDocument } from '../control-document.js';
import type { Converger, ReconcileOptions } from './converge.js';
import type { Engine } from './engine.js';
import { allocatePorts, freeHostBindPort, takenHostPort, type PortProbe } from './ports.js';
import type { AppSpec } from './spec/types.js';
import { allocateSubnet, DEFAULT_SUBNET_POOL, isSubnetTaken, overlapsAny } from './subnets.js';

/** How many times an app whose subnet or host-bind port another daemon took moves and tries again. */
const TAKEN_ATTEMPTS = 3;

export interface AllocatorOptions {
  store: ControlStore<ControlDocument>;
  engine: Engine;
  ports: PortProbe;
  logger: Logger;
  /** Converges the apps that moved again. */
  converger: Converger;
  /** A /16 from which each app's network gets a /24. */
  subnetPool?: string;
  /** Which /24 of the pool each search starts at (default random, so daemons sharing an engine rarely reach for the same one). */
  subnetStart?: () => number;
}

export class Allocator {
  constructor(private readonly options: AllocatorOptions) {}

  /** The app's listeners' ports: `kept` where still free, the fixed public ones, free ones for the rest. */
  async portsFor(draft: ControlDocument, spec: AppSpec, kept: AppRecord['ports']): Promise<AppRecord['ports']> {
    // Who owns each port, for the error when a fixed public port (53 for DNS) is taken.
    const owned = new Map<number, string>();
    for (const [name, record] of Object.entries(draft.apps)) {
      if (name === spec.name) continue;
      for (const [listener, ports] of Object.entries(record.ports)) owned.set(ports.hostBind, `app ${name}`).set(ports.public, `app ${name} (listener ${listener})`);
    }
    // What other containers publish, running or not (another daemon's on the same engine too).
    for (const port of await this.options.engine.portsInUse()) if (!owned.has(port)) owned.set(port, 'a container on this device');
    const wanted = spec.listeners.map((listener) => ({ name: listener.name, publicPort: listener.public_port, protocol: listener.protocol === 'udp' ? ('udp' as const) : ('tcp' as const) }));
    return allocatePorts(wanted, kept, owned, this.options.ports);
  }

  /** A /24 of the pool that no app, engine network or host interface uses. */
  async subnetFor(draft: ControlDocument): Promise<string> {
    const hostAddresses = Object.values(networkInterfaces()).flatMap((addresses) => (addresses ?? []).filter((a) => a.family === 'IPv4').map((a) => a.cidr!));
    const taken = [...Object.values(draft.apps).map((record) => record.subnet), ...(await this.options.engine.subnetsInUse()), ...hostAddresses];
    // From a random point: daemons sharing the engine then rarely pick the same /24 at once.
    return allocateSubnet(this.options.subnetPool ?? DEFAULT_SUBNET_POOL, taken, this.options.subnetStart?.() ?? randomInt(256));
  }

  /**
   * An app whose network does not exist yet may find its subnet taken meanwhile (another daemon
   * on the same engine made a network on it while this app's image was pulling): it moves to a
   * free one before the network is made.
   */
  async moveTakenSubnets(scope: ReadonlySet<string> | undefined): Promise<void> {
    const apps = this.options.store.data.apps;
    const names = [...(scope ?? Object.keys(apps))].filter((name) => apps[name]);
    if (!names.length) return;
    const [state, inUse] = await Promise.all([this.options.engine.state(), this.options.engine.subnetsInUse()]);
    const made = new Set(state.networks.map((network) => network.app));
    const moving = names.filter((name) => !made.has(name) && overlapsAny(apps[name]!.subnet, inUse));
    if (!moving.length) return;
    await this.options.store.commit(async (draft) => {
      for (const name of moving) {
        const record = draft.apps[name];
        if (!record) continue;
        const taken = record.subnet;
        record.subnet = await this.subnetFor(draft);
        this.options.logger.warn('the app\'s subnet was taken by another network; it moves', { app: name, from: taken, to: record.subnet });
      }
    });
  }

  /**
   * Another daemon on the engine may take what this one chose for an app between the choice and
   * its use: both read the engine, then both create. A network on the same /24 is refused by the
   * engine; a container on the same host-bind port cannot start. The apps refused that way move
   * to a free /24 or host-bind port (no one else sees a host-bind port: the proxy's route follows
   * the store) and converge again with their dependents, a few times at most.
   */
  async retryTaken(failures: Map<string, Error>, options: Omit<ReconcileOptions, 'scope'>): Promise<Map<string, Error>> {
    for (let attempt = 1; attempt <= TAKEN_ATTEMPTS; attempt++) {
      const subnets = new Set<string>();
      const ports = new Map<string, number>();
      for (const [app, err] of failures) {
        if (isSubnetTaken(err)) subnets.add(app);
        const port = takenHostPort(err);
        if (port !== undefined && Object.values(this.options.store.data.apps[app]?.ports ?? {}).some((p) => p.hostBind === port)) ports.set(app, port);
      }
      const moved = new Set([...subnets, ...ports.keys()]);
      if (!moved.size) break;
      const retry = new Set([...moved, ...[...failures.keys()].filter((app) => [...moved].some((dependency) => failures.get(app)!.message.startsWith(`dependency ${dependency} failed`)))]);
      this.options.logger.warn('another daemon took what an app was given meanwhile; moving it and trying again', { subnets: [...subnets], ports: Object.fromEntries(ports), attempt });
      if (subnets.size) await this.moveTakenSubnets(subnets);
      if (ports.size) await this.moveTakenHostPorts(ports);
      const again = await this.options.converger.reconcile({ ...options, scope: retry });
      for (const app of retry) failures.delete(app);
      for (const [app, err] of again) failures.set(app, err);
    }
    return failures;
  }

  /** Each app's listener on the given host-bind port gets a free one; its public port stays. */
  private async moveTakenHostPorts(taken: ReadonlyMap<string, number>): Promise<void> {
    const inUse = await this.options.engine.portsInUse();
    await this.options.store.commit(async (draft) => {
      const owned = new Set<number>([...inUse, ...taken.values()]);
      for (const record of Object.values(draft.apps)) for (const ports of Object.values(record.ports)) owned.add(ports.hostBind).add(ports.public);
      for (const [app, port] of taken) {
        const entry = Object.entries(draft.apps[app]?.ports ?? {}).find(([, ports]) => ports.hostBind === port);
        if (!entry) continue;
        entry[1].hostBind = await freeHostBindPort(owned, this.options.ports);
        owned.add(entry[1].hostBind);
        this.options.logger.warn('the app\'s host-bind port was taken by another container; it moves', { app, listener: entry[0], from: port, to: entry[1].hostBind });
      }
    });
  }
}
