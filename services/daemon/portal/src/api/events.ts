// The events stream (/api/v1/events): one WebSocket while signed in, shared by every screen.
// Reconnects with jittered backoff; a screen reloads what it shows when `connected` turns true
// again, since events sent while it was away are not replayed.
import { signal } from '@preact/signals';
import { useEffect, useRef } from 'preact/hooks';

export interface DeviceEvent<T = unknown> {
  type: string;
  at: string;
  data: T;
}

type Handler = (event: DeviceEvent<any>) => void;

export const connected = signal(false);
const handlers = new Map<string, Set<Handler>>();
let socket: WebSocket | undefined;
let retryTimer: number | undefined;
let attempt = 0;
let wanted = false;

export function openEvents(): void {
  wanted = true;
  if (!socket) connect();
}

export function closeEvents(): void {
  wanted = false;
  clearTimeout(retryTimer);
  socket?.close(1000);
  socket = undefined;
  connected.value = false;
}

function connect(): void {
  const ws = new WebSocket(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/api/v1/events`);
  socket = ws;
  ws.onopen = () => {
    attempt = 0;
    connected.value = true;
  };
  ws.onmessage = (message) => {
    let event: DeviceEvent;
    try {
      event = JSON.parse(String(message.data));
    } catch {
      return;
    }
    for (const handler of [...(handlers.get(event.type) ?? []), ...(handlers.get('*') ?? [])]) handler(event);
  };
  ws.onclose = (event) => {
    if (socket !== ws) return;
    socket = undefined;
    connected.value = false;
    // 4401: the session ended (sign-out, lock, expiry). Retrying with its cookie only gets 401s;
    // the next sign-in opens the stream again.
    if (event.code === 4401) wanted = false;
    if (!wanted) return;
    // Full jitter, 0.5 s doubling to 15 s: a restarting daemon is not hit by every tab at once.
    const delay = Math.random() * Math.min(15_000, 500 * 2 ** attempt++);
    retryTimer = window.setTimeout(() => wanted && connect(), delay);
  };
}

/** Subscribes a component to one event type ("*" for all) while it is mounted. */
export function useEvent<T = unknown>(type: string, handler: (event: DeviceEvent<T>) => void): void {
  const latest = useRef(handler);
  latest.current = handler;
  useEffect(() => subscribe(type, (event) => latest.current(event)), [type]);
}

export function subscribe(type: string, handler: Handler): () => void {
  let set = handlers.get(type);
  if (!set) handlers.set(type, (set = new Set()));
  set.add(handler);
  return () => set!.delete(handler);
}
