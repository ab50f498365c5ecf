// What an app's role means on this node. A follower does not run the app (its effective run state
// is stopped, while the desired state the user chose stays in the store), the proxy gets no local
// route for it, and its remote name goes to the leader: mode "tunnel". With no other node to
// carry that traffic (single-node mode), the tunnel mode is only logged.
import type { Logger } from '../../common/logger.js';
import type { RemoteRoute } from '../../common/remote-contract.js';
import type { Route } from '../../common/route-table.js';
import type { DesiredRunState } from '../control-document.js';
import { appOfResource, appResource, type Role, type RoleSource } from './roles.js';

export type RemoteMode = RemoteRoute['mode'];

export interface AppLeadershipOptions {
  roles: RoleSource;
  logger: Logger;
}

export class AppLeadership {
  constructor(private readonly options: AppLeadershipOptions) {}

  /** The run state this node converges the app to: the desired one only while it leads the app. */
  readonly effectiveRun = (app: string, desired: DesiredRunState): DesiredRunState => (this.leads(app) ? desired : 'stopped');

  /** How the app's remote names are served: here, or through the tunnel to the leader. */
  readonly modeFor = (app: string): RemoteMode => (this.leads(app) ? 'local' : 'tunnel');

  /** The proxy routes this node serves itself: those of the apps it leads. */
  servedLocally(routes: readonly Route[]): Route[] {
    return routes.filter((route) => this.leads(route.app));
  }

  /** Calls `listener` whenever this node's role for an app changes. Returns the unsubscribe function. */
  onAppRoleChange(listener: (app: string, role: Role) => void): () => void {
    const { roles } = this.options;
    const onChange = (resource: string, role: Role) => {
      const app = appOfResource(resource);
      if (app !== undefined) listener(app, role);
    };
    roles.on('change', onChange);
    return () => void roles.off('change', onChange);
  }

  /** Logs each app role change once, with what it means here. Returns the unsubscribe function. */
  logChanges(): () => void {
    return this.onAppRoleChange((app, role) => {
      const leader = this.options.roles.leader(appResource(app));
      if (role === 'follower') this.options.logger.warn('app follows another node: stopped here, remote route in tunnel mode', { app, leader: leader ?? 'unknown' });
      else this.options.logger.info('app led by this node again: back to its desired state, served locally', { app });
    });
  }

  private leads(app: string): boolean {
    return this.options.roles.role(appResource(app)) === 'leader';
  }
}
