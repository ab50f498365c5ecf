// Where a compose bind mount's host path points, in Piccolo's terms. App data (relative paths,
// ${APP_DATA_DIR}/..., CasaOS's /DATA/AppData/$AppID/...) becomes a folder in the app's encrypted
// volume; the device's shared folders (/DATA/Media, /DATA/Downloads, Umbrel's downloads) become a
// media grant; the engine socket becomes the engine_socket permission. Every other host path is
// refused with its reason: an app never sees the device's own files.
import path from 'node:path';

/** What ${APP_DATA_DIR} and ${UMBREL_ROOT} expand to: paths no real file system has, recognised here. */
export const APP_DATA_ROOT = '/.piccolo-app-data';
export const UMBREL_ROOT = '/.piccolo-umbrel-root';

export type BindTarget =
  /** A folder of the app's own data; `subpath` is inside the app's data (never empty: '.' is the root). */
  | { kind: 'data'; subpath: string }
  /** A shared device folder by name (Media, Downloads, Documents, Gallery), optionally a folder inside it. */
  | { kind: 'media'; folder: string; subpath?: string }
  | { kind: 'engine_socket' }
  /** Harmless and unneeded on Piccolo (the host's clock files): left out, with the warning. */
  | { kind: 'dropped'; warning: string }
  | { kind: 'refused'; reason: string };

const MEDIA_FOLDERS: Record<string, string> = { media: 'Media', downloads: 'Downloads', documents: 'Documents', gallery: 'Gallery', music: 'Music', pictures: 'Pictures', photos: 'Photos', videos: 'Videos', movies: 'Movies' };

const ENGINE_SOCKETS = new Set(['/var/run/docker.sock', '/run/docker.sock', '/run/podman/podman.sock', '/var/run/podman/podman.sock', '/run/user/1000/podman/podman.sock']);

/** The host's time zone files: compose files mount them for the clock; Piccolo sets TZ instead. */
const CLOCK_FILES = new Set(['/etc/localtime', '/etc/timezone']);

/** Named host areas, so the refusal says what the path is, not only that it is not allowed. */
const HOST_AREAS: [prefix: string, what: string][] = [
  ['/etc', 'the host\'s configuration'],
  ['/dev', 'the host\'s devices (use devices: for one device)'],
  ['/proc', 'the host\'s kernel state'],
  ['/sys', 'the host\'s kernel state'],
  ['/home', 'a home folder'],
  ['/root', 'a home folder'],
  ['/var/lib/docker', 'the container engine\'s own data'],
  ['/var/lib/containers', 'the container engine\'s own data'],
  ['/run', 'the host\'s runtime state'],
  ['/var/run', 'the host\'s runtime state'],
  ['/boot', 'the host\'s boot files'],
  ['/usr', 'the host\'s system files'],
  ['/lib', 'the host\'s system files'],
  ['/bin', 'the host\'s system files'],
  ['/sbin', 'the host\'s system files'],
  ['/var/log', 'the host\'s logs'],
  ['/mnt', 'the host\'s disks'],
  ['/media', 'the host\'s disks'],
  ['/srv', 'the host\'s files'],
  ['/opt', 'the host\'s files'],
  ['/tmp', 'the host\'s temporary files (use tmpfs: for a temporary folder)'],
];

/**
 * Classifies a host path that has already had its variables substituted. Any /DATA/AppData/<id>/
 * counts as the app's own: CasaOS files often write their id out instead of $AppID, and on Piccolo
 * there is no other app's folder to reach there.
 */
export function classifyBindSource(source: string): BindTarget {
  if (source === '') return { kind: 'refused', reason: 'the host path is empty' };
  if (source.startsWith('~')) return { kind: 'refused', reason: `${source} is a home folder, outside the app's data` };
  if (!source.startsWith('/')) {
    // Relative to the compose file: the app's own folder, which on Piccolo is its encrypted volume.
    const inside = path.posix.normalize(source);
    if (inside === '..' || inside.startsWith('../')) return { kind: 'refused', reason: `${source} steps out of the app's folder` };
    return { kind: 'data', subpath: inside };
  }
  // ${APP_DATA_DIR}/../bitcoin is another app's data: no absolute path may climb.
  if (source.split('/').includes('..')) return { kind: 'refused', reason: `${displayPath(source)} steps out of the app's data with ..` };
  const absolute = path.posix.normalize(source).replace(/(.)\/$/, '$1');
  const appData = within(absolute, APP_DATA_ROOT);
  if (appData !== undefined) return { kind: 'data', subpath: appData };
  const casa = /^\/DATA\/AppData\/[^/]+(?:\/(.*))?$/.exec(absolute);
  if (casa) return { kind: 'data', subpath: casa[1] ?? '.' };
  const media = mediaFolder(absolute);
  if (media) return media;
  if (ENGINE_SOCKETS.has(absolute) || /\/(docker|podman)\.sock$/.test(absolute)) return { kind: 'engine_socket' };
  if (CLOCK_FILES.has(absolute)) return { kind: 'dropped', warning: `${absolute} is not mounted; the app gets the device's time zone in TZ instead` };
  const display = displayPath(absolute);
  if (absolute === '/') return { kind: 'refused', reason: "/ is the whole host file system, outside the app's data" };
  if (absolute === '/DATA' || absolute.startsWith('/DATA/')) return { kind: 'refused', reason: `${display} is not an app data or shared folder (use /DATA/AppData/$AppID/..., /DATA/Media or /DATA/Downloads)` };
  if (absolute === UMBREL_ROOT || absolute.startsWith(`${UMBREL_ROOT}/`)) return { kind: 'refused', reason: `${display} is umbrelOS's own files, outside the app's data` };
  for (const [prefix, what] of HOST_AREAS) {
    if (within(absolute, prefix) !== undefined) return { kind: 'refused', reason: `${display} is outside the app's data: ${what}` };
  }
  return { kind: 'refused', reason: `${display} is a host path outside the app's data` };
}

/** /DATA/Media/Movies → Media, Movies; Umbrel's storage/downloads and home/Downloads → Downloads. */
function mediaFolder(absolute: string): BindTarget | undefined {
  const parts = absolute.split('/').filter(Boolean);
  let rest: string[] | undefined;
  if (parts[0] === 'DATA' && parts.length >= 2) rest = parts.slice(1);
  else if (absolute.startsWith(`${UMBREL_ROOT}/`)) {
    const inner = parts.slice(1);
    if (inner[0] === 'data' && inner[1] === 'storage' && inner.length >= 3) rest = inner.slice(2);
    else if (inner[0] === 'home' && inner.length >= 2) rest = inner.slice(1);
  }
  if (!rest) return undefined;
  const folder = MEDIA_FOLDERS[rest[0]!.toLowerCase()];
  if (!folder) return undefined;
  return rest.length > 1 ? { kind: 'media', folder, subpath: rest.slice(1).join('/') } : { kind: 'media', folder };
}

/** The part of `absolute` under `root` ('.' for root itself), or undefined when it is not under it. */
function within(absolute: string, root: string): string | undefined {
  if (absolute === root) return '.';
  return absolute.startsWith(`${root}/`) ? absolute.slice(root.length + 1) : undefined;
}

/** Sentinels back to the variables the file wrote, for messages. */
export function displayPath(text: string): string {
  return text.split(APP_DATA_ROOT).join('${APP_DATA_DIR}').split(UMBREL_ROOT).join('${UMBREL_ROOT}');
}
