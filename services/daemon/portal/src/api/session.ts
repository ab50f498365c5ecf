// What the whole portal follows: the device's vault state and whether this browser is signed in.
// Screens read these signals; the shell (app.tsx) decides from them which screens may show.
import { computed, signal } from '@preact/signals';
import { api, csrfToken, whenSignedOut } from './client.js';

export type VaultState = 'unclaimed' | 'locked' | 'unlocked' | 'failed';

export interface SetupStatus {
  state: VaultState;
  reason?: string;
  tpm: boolean;
}

export interface SessionReply {
  authenticated: boolean;
  user?: string;
  csrfToken?: string;
}

/** undefined until the first answer. */
export const device = signal<SetupStatus | undefined>(undefined);
export const session = signal<SessionReply | undefined>(undefined);
export const signedIn = computed(() => session.value?.authenticated === true);

export async function refreshDevice(): Promise<void> {
  const [status, current] = await Promise.all([api.get<SetupStatus>('/api/v1/setup/status'), api.get<SessionReply>('/api/v1/auth/session')]);
  csrfToken.value = current.csrfToken ?? '';
  device.value = status;
  session.value = current;
}

/** After setup, unlock, login or reset: the reply carries the new session's CSRF token. */
export function startSession(reply: SessionReply & { state?: VaultState }): void {
  csrfToken.value = reply.csrfToken ?? '';
  session.value = { authenticated: true, user: reply.user };
  if (reply.state && device.value) device.value = { ...device.value, state: reply.state };
}

export function endSession(): void {
  csrfToken.value = '';
  session.value = { authenticated: false };
}

export async function signOut(): Promise<void> {
  await api.post('/api/v1/auth/logout').catch(() => undefined);
  endSession();
}

/** A vault.state event: locking ends every session (the daemon destroys them). */
export function onVaultState(state: VaultState, reason?: string): void {
  if (device.value) device.value = { ...device.value, state, reason };
  if (state !== 'unlocked') endSession();
}

whenSignedOut(endSession);

/**
 * The proxy's auth gate sends browsers here with ?next=<the app's URL>. Back there after sign-in,
 * but only to this device (its own host name or an app's name below it), never elsewhere.
 */
export function nextOnDevice(search: string, here: Location = location): string | undefined {
  const next = new URLSearchParams(search).get('next');
  if (!next) return undefined;
  let target: URL;
  try {
    target = new URL(next, here.href);
  } catch {
    return undefined;
  }
  const own = here.hostname;
  const onDevice = target.hostname === own || target.hostname.endsWith(`.${own}`);
  return onDevice && ['http:', 'https:'].includes(target.protocol) ? target.href : undefined;
}
