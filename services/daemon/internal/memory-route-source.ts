// A RouteSource that holds the table in memory: the apps runtime sets it when apps change, and
// tests feed it directly. Every set() bumps rev, so a long-polling proxy sees each change.
import { EventEmitter } from 'node:events';
import { parseRouteTable, type CertificatePair, type PortalRoute, type Route, type RouteTable } from '../../common/route-table.js';
import type { RouteSource } from './internal-api.js';

export class InMemoryRouteSource extends EventEmitter implements RouteSource {
  private table: RouteTable = { rev: 0, portal: null, routes: [] };

  current(): RouteTable {
    return this.table;
  }

  /** Replaces the table; throws RouteTableError (nothing changes) when it is not valid. */
  set(change: { portal?: PortalRoute | null; routes?: Route[]; certificates?: CertificatePair[] }): RouteTable {
    const next = parseRouteTable({ ...this.table, ...change, rev: this.table.rev + 1 });
    this.table = next;
    this.emit('changed');
    return next;
  }
}
