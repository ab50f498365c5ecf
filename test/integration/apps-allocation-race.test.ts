// Two daemons on one engine (as the test suites run them) install an app each at the same moment
// and both reach for the same /24, or the same host-bind port: each read the engine before either
// had made anything. The engine (real Podman) refuses the second network, and the second container
// cannot start on the port the first one holds; that daemon's app moves to a free /24 or port and
// converges again. Both apps end up running, each on its own, its record and the engine agreeing.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createLogger } from '../../services/common/logger.js';
import { CONTROL_MIGRATIONS, CONTROL_SCHEMA_VERSION, initialControlDocument, type ControlDocument } from '../../services/daemon/control-document.js';
import { ControlStore } from '../../services/daemon/store/store.js';
import { Engine } from '../../services/daemon/apps/engine.js';
import type { ContainerSpec, NetworkSpec } from '../../services/daemon/apps/container-spec.js';
import { AppManager } from '../../services/daemon/apps/manager.js';
import { hostPortProbe, type PortProbe } from '../../services/daemon/apps/ports.js';
import { normalizeSpec } from '../../services/daemon/apps/spec/normalize.js';
import { FolderAppVolumes } from '../../services/daemon/apps/volumes.js';
import { startPodman, type TestPodman } from '../support/podman.js';

const logger = createLogger({ service: 'test', level: process.env.PICCOLO_TEST_LOG ? 'debug' : 'error' });
/** A pool of this suite's own: the other suites' daemons use the default one. */
const POOL = '10.213.0.0/16';

/** The real engine; a gated creation waits until both daemons have come to theirs, so they truly race. */
class RacingEngine extends Engine {
  readonly tried: string[] = [];
  readonly started: string[] = [];
  gates: { network?: () => Promise<void>; container?: () => Promise<void> } = {};

  override async createNetwork(spec: NetworkSpec): Promise<void> {
    this.tried.push(spec.subnet);
    await this.gates.network?.();
    return super.createNetwork(spec);
  }

  override async createContainer(spec: ContainerSpec, configHash: string): Promise<void> {
    await this.gates.container?.();
    return super.createContainer(spec, configHash);
  }
}

/** Resolves for everyone once `count` callers have arrived; open from then on. */
function barrier(count: number): () => Promise<void> {
  let arrived = 0;
  let open!: () => void;
  const all = new Promise<void>((resolve) => (open = resolve));
  return () => {
    if (++arrived >= count) open();
    return all;
  };
}

/** While `apart`, the two daemons' host ports are kept apart (even and odd), so that only what a test races for collides. */
let apart = true;
let sameSubnets = true;
function portsOf(parity: 0 | 1): PortProbe {
  return { isFree: async (port) => (!apart || port % 2 === parity) && (await hostPortProbe.isFree(port)), holder: hostPortProbe.holder };
}

interface Daemon {
  store: ControlStore<ControlDocument>;
  engine: RacingEngine;
  manager: AppManager;
}

let podman: TestPodman;
let dir = '';
let image = '';
const daemons: Daemon[] = [];

async function openDaemon(name: string, parity: 0 | 1): Promise<Daemon> {
  const store = await ControlStore.open<ControlDocument>({
    dir: path.join(dir, name),
    logger,
    schemaVersion: CONTROL_SCHEMA_VERSION,
    migrations: CONTROL_MIGRATIONS,
    initial: initialControlDocument,
  });
  // Each its own instance label: neither takes the other's containers or networks for strays.
  const engine = new RacingEngine({ docker: podman.docker, logger, stopTimeoutS: 2, instance: `allocation-race-${name}-${podman.prefix}` });
  const manager = new AppManager({
    store,
    engine,
    volumes: new FolderAppVolumes(path.join(dir, `${name}-volumes`)),
    logger,
    ports: portsOf(parity),
    subnetPool: POOL,
    // Both start their search at the pool's first /24 (the collision every random start risks), unless kept apart.
    subnetStart: () => (sameSubnets ? 0 : parity * 128),
  });
  await manager.open();
  const daemon = { store, engine, manager };
  daemons.push(daemon);
  return daemon;
}

test.before(async () => {
  podman = await startPodman();
  dir = await mkdtemp(path.join(tmpdir(), 'piccolo-subnet-race-'));
  image = await podman.buildHttpdImage('v1', 'racing\n');
});

test.after(async () => {
  try {
    for (const { manager, store } of daemons) {
      for (const app of await manager.list()) await manager.waitForJob((await manager.uninstall(app.name, { purge: true })).id);
      await manager.close();
      await store.close();
    }
  } finally {
    await podman.stop();
    await rm(dir, { recursive: true, force: true });
  }
});

test('two daemons install at once onto the same /24: the refused one moves to the next free one; both run', async () => {
  const [a, b] = [await openDaemon('a', 0), await openDaemon('b', 1)];
  const gate = barrier(2);
  a.engine.gates.network = b.engine.gates.network = gate;
  const names = [`${podman.prefix}race-a`, `${podman.prefix}race-b`];
  const spec = (name: string) => normalizeSpec({ name, image, listeners: [{ name: 'web', guest_port: 80, protocol: 'http' }] });
  const jobs = await Promise.all([a.manager.install(spec(names[0]!)), b.manager.install(spec(names[1]!))]);
  const finished = await Promise.all([a.manager.waitForJob(jobs[0]!.id), b.manager.waitForJob(jobs[1]!.id)]);
  assert.equal(finished.map((job) => job.status), ['succeeded', 'succeeded'], JSON.stringify(finished.map((job) => job.error)));

  // The race happened: both first tried the same /24, and exactly one of them had to try again.
  assert.is(a.engine.tried[0], b.engine.tried[0], `both reached for one subnet first: ${a.engine.tried} / ${b.engine.tried}`);
  assert.equal([a.engine.tried.length, b.engine.tried.length].sort(), [1, 2], `one retry: ${a.engine.tried} / ${b.engine.tried}`);

  const subnets: string[] = [];
  for (const [i, daemon] of [a, b].entries()) {
    const name = names[i]!;
    const network = await podman.docker.getNetwork(`piccolo-${name}`).inspect();
    const subnet = network.IPAM?.Config?.[0]?.Subnet as string;
    assert.is(daemon.store.data.apps[name]!.subnet, subnet, `${name}: the record says the network's subnet`);
    assert.is(daemon.engine.tried.at(-1), subnet, `${name}: made on the last subnet it tried`);
    subnets.push(subnet);
    const view = await daemon.manager.get(name);
    assert.is(view.state, 'running', `${name}: ${JSON.stringify(view)}`);
    const answer = await fetch(`http://127.0.0.1:${view.services[0]!.hostBindPort}/`).then((res) => res.text());
    assert.is(answer, 'racing\n', `${name} serves its page`);
  }
  assert.is.not(subnets[0], subnets[1], 'two networks, two subnets');
  assert.ok(subnets.every((subnet) => subnet.startsWith('10.213.')), `both from the pool: ${subnets}`);
});

test('two daemons install at once onto the same host-bind port: the one that cannot start moves to a free port; both run', async () => {
  const [a, b] = daemons;
  a!.engine.gates = {};
  b!.engine.gates = {};
  // The ports race this time, the subnets not.
  apart = false;
  sameSubnets = false;
  const gate = barrier(2);
  a!.engine.gates.container = b!.engine.gates.container = gate;
  const names = [`${podman.prefix}port-a`, `${podman.prefix}port-b`];
  const spec = (name: string) => normalizeSpec({ name, image, listeners: [{ name: 'web', guest_port: 80, protocol: 'http' }] });
  const jobs = await Promise.all([a!.manager.install(spec(names[0]!)), b!.manager.install(spec(names[1]!))]);
  const allocated = [a!.store.data.apps[names[0]!]!.ports.web!.hostBind, b!.store.data.apps[names[1]!]!.ports.web!.hostBind];
  assert.is(allocated[0], allocated[1], `both were given one port: ${allocated}`);
  const finished = await Promise.all([a!.manager.waitForJob(jobs[0]!.id), b!.manager.waitForJob(jobs[1]!.id)]);
  assert.equal(finished.map((job) => job.status), ['succeeded', 'succeeded'], JSON.stringify(finished.map((job) => job.error)));
  const ports: number[] = [];
  for (const [i, daemon] of [a!, b!].entries()) {
    const name = names[i]!;
    const hostBind = daemon.store.data.apps[name]!.ports.web!.hostBind;
    const inspected = await podman.docker.getContainer(`piccolo-${name}`).inspect();
    assert.equal(inspected.HostConfig.PortBindings['80/tcp'], [{ HostIp: '127.0.0.1', HostPort: String(hostBind) }], `${name}: the container publishes the port its record says`);
    assert.is(await fetch(`http://127.0.0.1:${hostBind}/`).then((res) => res.text()), 'racing\n', `${name} serves its page`);
    ports.push(hostBind);
  }
  // Given one port, now on two: at least one moved, which only the retry does.
  assert.is.not(ports[0], ports[1], 'two containers, two ports');
});

test.run();
