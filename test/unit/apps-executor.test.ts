// The executor against a recording engine: a service that does not become healthy fails its app
// with an error naming the service, the app's later steps and its dependents are skipped, other
// apps still run; an update's retire step stops and renames the old container.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createLogger } from '../../services/common/logger.js';
import { ServiceWaitError } from '../../services/daemon/apps/errors.js';
import { Executor, type EngineSteps } from '../../services/daemon/apps/executor.js';
import type { Step } from '../../services/daemon/apps/planner.js';

const logger = createLogger({ service: 'test', level: 'error' });

function recordingEngine(unhealthy: Set<string>): { engine: EngineSteps; calls: string[] } {
  const calls: string[] = [];
  const record = (call: string) => async () => void calls.push(call);
  const engine: EngineSteps = {
    removeContainer: async (id) => void calls.push(`remove ${id}`),
    removeNetwork: async (name) => void calls.push(`remove-network ${name}`),
    createNetwork: async (spec) => void calls.push(`create-network ${spec.name}`),
    createContainer: async (spec) => void calls.push(`create ${spec.name}`),
    startContainer: async (name) => void calls.push(`start ${name}`),
    stopContainer: async (id) => void calls.push(`stop ${id}`),
    prepareInternalNetwork: record('prepare'),
    forgetNeighbour: async (address) => void calls.push(`neigh ${address}`),
    renameContainer: async (id, name) => void calls.push(`rename ${id} ${name}`),
    waitForContainer: async (name, condition) => {
      calls.push(`wait ${name} ${condition}`);
      if (unhealthy.has(name)) throw new Error('is unhealthy: exit code 1');
    },
  };
  return { engine, calls };
}

const free = { isFree: async () => true, holder: async () => undefined };

test('a service that does not become healthy: its app stops there, naming the service; dependents skipped; others run', async () => {
  const { engine, calls } = recordingEngine(new Set(['piccolo-shop-db']));
  const steps: Step[] = [
    { kind: 'start-container', app: 'shop', container: 'piccolo-shop-db', hostPorts: [] },
    { kind: 'wait-container', app: 'shop', container: 'piccolo-shop-db', service: 'db', condition: 'service_healthy', timeoutMs: 1000 },
    { kind: 'start-container', app: 'shop', container: 'piccolo-shop-web', hostPorts: [] },
    { kind: 'start-container', app: 'shopfront', container: 'piccolo-shopfront', hostPorts: [] },
    { kind: 'start-container', app: 'blog', container: 'piccolo-blog', hostPorts: [] },
  ];
  const failures = await new Executor({ engine, ports: free, logger }).run(steps, { dependentsOf: (app) => (app === 'shop' ? ['shopfront'] : []) });
  assert.equal(calls, ['start piccolo-shop-db', 'wait piccolo-shop-db service_healthy', 'start piccolo-blog']);
  const error = failures.get('shop');
  assert.instance(error, ServiceWaitError);
  assert.is(error!.message, 'app shop: service db is unhealthy: exit code 1');
  assert.match(failures.get('shopfront')!.message, /^dependency shop failed: app shop: service db/);
  assert.not.ok(failures.has('blog'));
});

test('retire: any earlier leftover goes, the old container is stopped with its grace and renamed aside', async () => {
  const { engine, calls } = recordingEngine(new Set());
  await new Executor({ engine, ports: free, logger }).run([{ kind: 'retire-container', app: 'shop', containerId: 'c1', container: 'piccolo-shop-web', stopTimeoutS: 5 }], { dependentsOf: () => [] });
  assert.equal(calls, ['remove piccolo-shop-web.previous', 'stop c1', 'rename c1 piccolo-shop-web.previous']);
});

test.run();
