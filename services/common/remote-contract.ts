// Remote access, between the daemon and the tunnel: what the tunnel must declare to the relay and
// where each incoming stream may go (the daemon serves it on its internal socket, long-polled
// like the route table), and the tunnel's status (pushed back to the daemon, which shows it).
import type { Flow, Protocol } from './route-table.js';

/** Paths on the daemon's internal socket (beside INTERNAL_PATHS in route-table.ts). */
export const REMOTE_PATHS = { remote: '/v1/remote', tunnelStatus: '/v1/tunnel/status' } as const;

export interface RemoteTable {
  /** Increases on every change; the tunnel long-polls with ?wait=<rev>. */
  rev: number;
  /** False: the tunnel holds no relay connection (and remote fields are absent). */
  enabled: boolean;
  /** wss://host:port/connect */
  relayUrl?: string;
  /** The HMAC key for the relay's tokens. Only ever sent over the internal socket, never logged. */
  deviceSecret?: string;
  /** Each public name, with where its streams go; the tunnel declares them all in its tokens. */
  routes: RemoteRoute[];
}

export interface RemoteRoute {
  /** Fully qualified, lower case: the portal name, or <listener>-<app>.<app domain>. */
  hostname: string;
  kind: 'portal' | 'app';
  app?: string;
  listener?: string;
  flow?: Flow;
  protocol?: Protocol;
  /**
   * local: served by this device. tunnel: another node leads this app; in single-node mode that
   * only gets logged, and nothing is served locally.
   */
  mode: 'local' | 'tunnel';
}

export const TUNNEL_STATES = ['disabled', 'connecting', 'connected', 'backoff'] as const;
export type TunnelState = (typeof TUNNEL_STATES)[number];

export interface TunnelStatus {
  state: TunnelState;
  /** The relay's URL, without secrets. */
  relay?: string;
  lastError?: string;
  /** When state is backoff: how long until the next try. */
  backoffMs?: number;
  /** Open end-user streams. */
  streams: number;
  bytesIn: number;
  bytesOut: number;
  /** ISO time of the last state change. */
  since: string;
}
