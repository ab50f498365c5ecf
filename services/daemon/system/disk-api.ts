// GET /api/v1/system/disk: how full the state disk is and what uses it, for the portal's banner
// (shown on every signed-in screen while the disk is full; system.disk events say when to ask).
import type http from 'node:http';
import type Docker from 'dockerode';
import type { Router } from '../../common/http.js';
import type { DiskSpaceWatch } from './disk-space.js';

export function addDiskRoutes(router: Router, deps: { requireSession: (req: http.IncomingMessage) => void; disk: Pick<DiskSpaceWatch, 'view'> }): Router {
  return router.on('GET', '/api/v1/system/disk', async (req) => {
    deps.requireSession(req);
    return { body: await deps.disk.view() };
  });
}

/**
 * The engine's images: the size of their layers and the folder they are stored in. Podman (4.3)
 * answers LayersSize 0, so then the images' own sizes are summed; layers two images share are
 * counted twice there, so the figure is an upper bound.
 */
export async function engineImages(docker: Docker): Promise<{ bytes: number; dir: string | undefined }> {
  const [df, info] = await Promise.all([docker.df(), docker.info()]);
  const layers = Number(df.LayersSize) || 0;
  const images = Array.isArray(df.Images) ? df.Images.reduce((sum: number, image: { Size?: unknown }) => sum + (Number(image.Size) || 0), 0) : 0;
  return { bytes: layers || images, dir: typeof info.DockerRootDir === 'string' ? info.DockerRootDir : undefined };
}
