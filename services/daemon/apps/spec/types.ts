// The app spec (app.yaml) after parsing: every optional list, map and setting has its default, so
// the runtime never checks for undefined. Field names are the YAML keys, as in the reference
// Piccolo app spec (name, image, listeners[].guest_port, storage.persistent, ...), so one name
// means the same thing in app.yaml, in the JSON Schema and in code.

import type { Flow, MiddlewareName, MiddlewareParams, Protocol } from '../../../common/route-table.js';

export type AppType = 'user' | 'system';

/** tcp: the device terminates TLS and sees the traffic; tls: passthrough, the app terminates TLS. */
export type ListenerFlow = Flow;

export type ListenerProtocol = Protocol;

export type NetworkAccess = 'allow' | 'deny';

/**
 * A proxy middleware with its parameters. Names and parameters are the route table's
 * (services/common/route-table.ts): the daemon hands them to the proxy as they are written.
 */
export type Middleware = { [N in MiddlewareName]: { name: N; params: MiddlewareParams[N] } }[MiddlewareName];

export interface Listener {
  /** A DNS label: the listener is reached at <listener>-<app>.<device>.local. */
  name: string;
  /** The port the app listens on inside its container. */
  guest_port: number;
  flow: ListenerFlow;
  protocol: ListenerProtocol;
  /**
   * Not in the reference spec (which has per-path auth rules instead): a `type: user` HTTP or
   * WebSocket listener is behind the device's login unless it is public.
   */
  public: boolean;
  /** Applied in order by the proxy. */
  protocol_middleware: Middleware[];
  /** Ports on the remote relay where the listener is published. */
  remote_ports: number[];
}

export interface StorageVolume {
  /** Absolute path inside the container; the data lives in the app's encrypted volume. */
  container: string;
  size_limit?: string;
  size_limit_bytes?: number;
}

export interface Storage {
  /** Keyed by volume name; kept across restarts and updates. */
  persistent: Record<string, StorageVolume>;
  /** Keyed by volume name; emptied when the app restarts. */
  temporary: Record<string, StorageVolume>;
}

export interface ResourceLimits {
  memory?: string;
  memory_bytes?: number;
  /** In cores: 0.5 is half a core. */
  cpu?: number;
  /** A quota for all of the app's storage. */
  storage?: string;
  storage_bytes?: number;
}

export interface HttpHealthCheck {
  path: string;
  /** The name of the listener the probe goes through (as in the reference spec), not a number. */
  port: string;
  timeout: string;
  timeout_ms: number;
  retries: number;
}

export interface HealthCheck {
  http: HttpHealthCheck;
}

export interface AppSpec {
  name: string;
  image: string;
  type: AppType;
  listeners: Listener[];
  storage: Storage;
  environment: Record<string, string>;
  resources: { limits: ResourceLimits };
  healthcheck?: HealthCheck;
  /** Names of other apps this app needs running first. */
  depends_on: string[];
  permissions: { network: { internet: NetworkAccess } };
}

// What app.yaml holds once the JSON Schema has accepted it: optional fields may be missing, and
// environment values may be numbers or booleans (NGINX_PORT: 80). normalizeSpec fills the rest.

export interface ListenerInput {
  name: string;
  guest_port: number;
  flow?: ListenerFlow;
  protocol?: ListenerProtocol;
  public?: boolean;
  protocol_middleware?: { name: MiddlewareName; params?: Record<string, unknown> }[];
  remote_ports?: number[];
}

export interface StorageVolumeInput {
  container: string;
  size_limit?: string;
}

export interface AppSpecInput {
  name: string;
  image: string;
  type?: AppType;
  listeners: ListenerInput[];
  storage?: { persistent?: Record<string, StorageVolumeInput>; temporary?: Record<string, StorageVolumeInput> };
  environment?: Record<string, string | number | boolean>;
  resources?: { limits?: { memory?: string; cpu?: number; storage?: string } };
  healthcheck?: { http: { path: string; port: string; timeout?: string; retries?: number } };
  depends_on?: string[];
  permissions?: { network?: { internet?: NetworkAccess } };
}
