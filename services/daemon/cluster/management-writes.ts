// Which API requests only the kernel's leader may serve. Management writes change the device's
// shared control state (apps, remote access, the admin password and recovery key, setup), so a
// follower refuses them with a 409 naming the leader; reads still work everywhere. Allowed on a
// follower: what only concerns this node itself, its sessions (login, logout) and its own
// encrypted volumes (unlock, lock), which no other node can open or close for it.
import type { RouteCheck } from '../../common/http.js';
import { NotLeaderError } from '../../common/errors.js';
import { KERNEL, type RoleSource } from './roles.js';

const NODE_LOCAL_WRITES = new Set([
  'POST /api/v1/auth/login',
  // The second step of a sign-in (auth/second-factor/) is sign-in too. What it writes (the last
  // TOTP step, a passkey's counter) lands in this node's copy of the store until the leader's
  // next copy replaces it; on a single node, the one that exists today, that copy is the store.
  'POST /api/v1/auth/login/second-factor',
  'POST /api/v1/auth/login/passkey/options',
  'POST /api/v1/auth/login/passkey',
  'POST /api/v1/auth/logout',
  'POST /api/v1/crypto/unlock',
  'POST /api/v1/crypto/lock',
]);

/** `route` as the router names it: "METHOD /pattern", e.g. "POST /api/v1/apps/:name/start". */
export function isManagementWrite(route: string): boolean {
  const [method = '', pattern = ''] = route.split(' ');
  if (method === 'GET' || method === 'HEAD' || method === 'OPTIONS') return false;
  // Test-build hooks (test-hooks.ts) drive this node itself, roles included.
  if (!pattern.startsWith('/api/v1/') || pattern.startsWith('/api/v1/test/')) return false;
  return !NODE_LOCAL_WRITES.has(`${method} ${pattern}`);
}

/** A router check (Router.before) that refuses management writes while this node follows the kernel. */
export function leaderOnlyWrites(roles: RoleSource): RouteCheck {
  return (_req, route) => {
    if (isManagementWrite(route) && roles.role(KERNEL) === 'follower') throw new NotLeaderError(roles.leader(KERNEL));
  };
}
