// Storage as the portal shows it: an app's volumes (limit, use) and media mounts on its page, and
// the device's shared media folders with the apps that have each (apps/storage-view.ts).
import type http from 'node:http';
import type { Router } from '../../common/http.js';
import type { AppManager } from '../apps/manager.js';
import { appStorage, sharedFolders } from '../apps/storage-view.js';
import type { Vault } from '../vault.js';

export interface StorageRoutesDeps {
  apps: () => Pick<AppManager, 'get' | 'list'>;
  vault: Pick<Vault, 'appVolumeMountpoint' | 'mediaFolders'>;
  requireSession: (req: http.IncomingMessage) => void;
}

export function addStorageRoutes(router: Router, deps: StorageRoutesDeps): Router {
  const { apps, vault, requireSession } = deps;
  return router
    .on('GET', '/api/v1/apps/:name/storage', async (req, { name }) => {
      requireSession(req);
      const app = await apps().get(name!);
      return { body: await appStorage(app.spec, await vault.appVolumeMountpoint(app.name)) };
    })
    .on('GET', '/api/v1/storage/shared', async (req) => {
      requireSession(req);
      const installed = await apps().list();
      return { body: { folders: sharedFolders(await vault.mediaFolders(), installed) } };
    });
}
