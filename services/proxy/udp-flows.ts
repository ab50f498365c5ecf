// The flow table of one UDP listener. UDP has no connections, so the proxy makes its own: each
// client address:port is a flow with its own upstream socket, so the app's replies can be told
// apart and sent back to the right client. The table caps how many flows a listener and one
// client address may hold (each flow is a socket: a hostile client must not exhaust them) and
// forgets flows that went idle. Pure bookkeeping with the clock passed in, so it is tested alone.

export interface FlowLimits {
  /** Flows on the listener at once. */
  maxFlows: number;
  /** Flows from one client address at once (its source ports are what vary). */
  maxFlowsPerClient: number;
  /** Idle time after which a conversation (a flow that went back and forth more than once) is forgotten. */
  idleMs: number;
  /** Idle time for a flow of at most one exchange: a DNS or NTP query, a probe nobody answered. */
  briefIdleMs: number;
}

/**
 * The idle rule follows Linux conntrack's: a UDP flow is "assured" once the client spoke again after
 * a reply, and only then gets the long timeout. A DNS client sends one query from a fresh source
 * port and takes one answer, so its flow is done as soon as it is answered; keeping it for a minute
 * would fill the per-client cap with finished queries (a browser resolves dozens of names at once).
 * A flow expired too early costs little: the next datagram opens a new one, only its upstream
 * source port changes, which a request/response protocol does not notice.
 */
export const DEFAULT_FLOW_LIMITS: FlowLimits = { maxFlows: 1024, maxFlowsPerClient: 64, idleMs: 60_000, briefIdleMs: 5_000 };

export type FlowRefusal = 'listener_full' | 'client_full';

export interface FlowEntry<T> {
  readonly key: string;
  /** The client's address, without the port: what the per-client cap counts. */
  readonly client: string;
  readonly value: T;
  lastAt: number;
  /** The upstream answered at least once. */
  replied: boolean;
  /** The client spoke again after an answer: a conversation, kept for idleMs. */
  assured: boolean;
}

export class FlowTable<T> {
  private readonly flows = new Map<string, FlowEntry<T>>();
  private readonly perClient = new Map<string, number>();

  constructor(private readonly limits: FlowLimits) {}

  get size(): number {
    return this.flows.size;
  }

  get(key: string): FlowEntry<T> | undefined {
    return this.flows.get(key);
  }

  flowsOf(client: string): number {
    return this.perClient.get(client) ?? 0;
  }

  /** Why a new flow from this client would be refused, or undefined when there is room. */
  refusal(client: string): FlowRefusal | undefined {
    if (this.flows.size >= this.limits.maxFlows) return 'listener_full';
    if (this.flowsOf(client) >= this.limits.maxFlowsPerClient) return 'client_full';
    return undefined;
  }

  /** Adds a flow; the caller asked refusal() first. */
  add(key: string, client: string, value: T, now: number): FlowEntry<T> {
    const entry: FlowEntry<T> = { key, client, value, lastAt: now, replied: false, assured: false };
    this.flows.set(key, entry);
    this.perClient.set(client, this.flowsOf(client) + 1);
    return entry;
  }

  fromClient(entry: FlowEntry<T>, now: number): void {
    entry.lastAt = now;
    if (entry.replied) entry.assured = true;
  }

  fromUpstream(entry: FlowEntry<T>, now: number): void {
    entry.lastAt = now;
    entry.replied = true;
  }

  /** Removes and returns the flows idle past their timeout. */
  expire(now: number): FlowEntry<T>[] {
    const gone: FlowEntry<T>[] = [];
    for (const entry of this.flows.values()) {
      const idleMs = entry.assured ? this.limits.idleMs : this.limits.briefIdleMs;
      if (now - entry.lastAt >= idleMs) gone.push(entry);
    }
    for (const entry of gone) this.remove(entry);
    return gone;
  }

  /** Removes one flow (an error on its socket); false if it was already gone. */
  remove(entry: FlowEntry<T>): boolean {
    if (this.flows.get(entry.key) !== entry) return false;
    this.flows.delete(entry.key);
    const left = this.flowsOf(entry.client) - 1;
    if (left <= 0) this.perClient.delete(entry.client);
    else this.perClient.set(entry.client, left);
    return true;
  }

  /** Removes and returns every flow (the listener closes, or its route changed). */
  clear(): FlowEntry<T>[] {
    const all = [...this.flows.values()];
    this.flows.clear();
    this.perClient.clear();
    return all;
  }
}
