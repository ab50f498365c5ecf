// Client side of health reporting: a service tells the health service how its components are,
// over the health service's local unix socket. It sends on every change and as a heartbeat;
// the health service counts a component whose heartbeats stop as down.
import http from 'node:http';
import type { Logger } from './logger.js';
import type { Module } from './lifecycle.js';

export const COMPONENT_STATES = ['ok', 'degraded', 'down', 'fatal'] as const;
export type ComponentState = (typeof COMPONENT_STATES)[number];

export interface ComponentReport {
  component: string;
  state: ComponentState;
  /** Why it is not ok, or an annotation such as "locked, waiting for unlock". Never a secret. */
  reason?: string;
  /** How long this report stays true without a heartbeat. */
  ttlMs: number;
}

export const REPORT_PATH = '/v1/report';

export interface HealthReporterOptions {
  socketPath: string;
  logger: Logger;
  intervalMs: number;
}

export class HealthReporter implements Module {
  readonly name = 'health-reporter';
  private readonly components = new Map<string, Omit<ComponentReport, 'ttlMs'>>();
  private timer: NodeJS.Timeout | undefined;
  /** Unknown until the first report: a service may start before health does (the proxy). */
  private reachable: boolean | undefined;

  constructor(private readonly options: HealthReporterOptions) {}

  /** Records a component's state and sends it at once when it changed. */
  set(component: string, state: ComponentState, reason?: string): void {
    const previous = this.components.get(component);
    this.components.set(component, { component, state, reason });
    if (previous?.state !== state || previous.reason !== reason) void this.send(component);
  }

  async start(): Promise<void> {
    this.timer = setInterval(() => void this.sendAll(), this.options.intervalMs);
    await this.sendAll();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    // Say goodbye so readiness drops at once rather than after the heartbeat times out.
    for (const component of this.components.keys()) this.components.get(component)!.state = 'down';
    await this.sendAll();
  }

  private async sendAll(): Promise<void> {
    await Promise.all([...this.components.keys()].map((component) => this.send(component)));
  }

  private async send(component: string): Promise<void> {
    const entry = this.components.get(component);
    if (!entry) return;
    const report: ComponentReport = { ...entry, ttlMs: this.options.intervalMs * 3 };
    try {
      await postJson(this.options.socketPath, REPORT_PATH, report);
      if (this.reachable === false) this.options.logger.info('health service reachable');
      this.reachable = true;
    } catch (err) {
      // The health service may start later or restart; keep trying on the heartbeat, log once.
      if (this.reachable === true) this.options.logger.warn('cannot report to health service', { err, socket: this.options.socketPath });
      else if (this.reachable === undefined) this.options.logger.info('health service not up yet; reporting on the heartbeat', { socket: this.options.socketPath });
      this.reachable = false;
    }
  }
}

/**
 * A service's own component, as its last module: "down (starting)" until every module before it
 * serves, then what `current` says; "down (stopping)" as soon as the service begins to stop. So
 * /health/ready never counts a service that cannot serve yet, or any more, as ready.
 */
export class ServingReport implements Module {
  readonly name = 'serving-report';
  private serving = false;

  constructor(
    private readonly health: HealthReporter,
    private readonly component: string,
    private readonly current: () => { state: ComponentState; reason?: string } = () => ({ state: 'ok' }),
  ) {
    health.set(component, 'down', 'starting');
  }

  async start(): Promise<void> {
    this.serving = true;
    this.refresh();
  }

  async stop(): Promise<void> {
    this.serving = false;
    this.health.set(this.component, 'down', 'stopping');
  }

  /** Reports `current` again (when it changed); before start and after stop there is nothing to say. */
  refresh(): void {
    if (!this.serving) return;
    const { state, reason } = this.current();
    this.health.set(this.component, state, reason);
  }
}

function postJson(socketPath: string, path: string, body: unknown): Promise<void> {
  const payload = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = http.request(
      { socketPath, path, method: 'POST', timeout: 2000, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } },
      (res) => {
        res.resume();
        if (res.statusCode === 204 || res.statusCode === 200) resolve();
        else reject(new Error(`health service answered ${res.statusCode}`));
      },
    );
    req.on('timeout', () => req.destroy(new Error('health service did not answer in time')));
    req.on('error', reject);
    req.end(payload);
  });
}
