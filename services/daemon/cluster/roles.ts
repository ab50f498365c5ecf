// Leadership roles, one per resource: the kernel (who manages the device's shared control state)
// and each app ("app:<name>", who runs it). Clusters come later; this is the seam an existing
// engine (an etcd lease, say) plugs into by implementing RoleSource. No consensus code here.
import { EventEmitter } from 'node:events';

export type Role = 'leader' | 'follower';

export const KERNEL = 'kernel';

export function appResource(app: string): string {
  return `app:${app}`;
}

/** The app of an "app:<name>" resource, or undefined for any other resource. */
export function appOfResource(resource: string): string | undefined {
  return resource.startsWith('app:') && resource.length > 4 ? resource.slice(4) : undefined;
}

export interface RoleSource {
  role(resource: string): Role;
  /** Where the leader of the resource can be reached (a host name), when this node knows it. */
  leader(resource: string): string | undefined;
  /** Emitted after role() starts answering the new role; never for a role that did not change. */
  on(event: 'change', listener: (resource: string, role: Role) => void): this;
  off(event: 'change', listener: (resource: string, role: Role) => void): this;
}

/** A device on its own leads everything. */
export class SingleNodeRoles extends EventEmitter implements RoleSource {
  /** `self`: this node's own name, given as the leader of every resource. */
  constructor(private readonly self: string) {
    super();
  }

  role(_resource: string): Role {
    return 'leader';
  }

  leader(_resource: string): string {
    return this.self;
  }
}

/**
 * Roles set by hand: tests, and the daemon's test hook, flip them. Every resource starts as
 * leader (single-node behaviour) until set otherwise.
 */
export class ScriptedRoles extends EventEmitter implements RoleSource {
  private readonly followed = new Map<string, string | undefined>();

  constructor(private readonly self: string) {
    super();
  }

  role(resource: string): Role {
    return this.followed.has(resource) ? 'follower' : 'leader';
  }

  leader(resource: string): string | undefined {
    return this.followed.has(resource) ? this.followed.get(resource) : this.self;
  }

  /** As follower, `leader` names the node that leads the resource instead. */
  set(resource: string, role: Role, leader?: string): void {
    const before = this.role(resource);
    if (role === 'follower') this.followed.set(resource, leader);
    else this.followed.delete(resource);
    if (before !== role) this.emit('change', resource, role);
  }
}
