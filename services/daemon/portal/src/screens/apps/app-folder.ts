// An app folder chosen in the browser (<input type=file webkitdirectory>): an Umbrel app
// (umbrel-app.yml + docker-compose.yml, maybe exports.sh) or a CasaOS / plain compose folder
// (docker-compose.yml, maybe a .env). Read here into the body the install and preview take;
// nothing but these few text files leaves the browser.

/** What the install, preview and update bodies take from a folder. */
type Variables = { env?: string; env_files?: Record<string, string> };

export type FolderSource = ({ umbrel: { manifest: string; compose: string } } | { compose: string }) & Variables;

export interface AppFolder {
  /** The folder's name, as the browser gives it. */
  folder: string;
  /** The files read, by name, in the order shown. */
  read: string[];
  source: FolderSource;
}

const COMPOSE_NAMES = ['docker-compose.yml', 'docker-compose.yaml', 'compose.yml', 'compose.yaml'];
const MANIFEST_NAMES = ['umbrel-app.yml', 'umbrel-app.yaml'];
/** The daemon takes 64 KiB of YAML; a bigger file is not a compose file. */
const MAX_FILE_BYTES = 64 * 1024;

/** A file of the chosen folder: its path below the folder ("nextcloud/docker-compose.yml") and its text. */
export interface FolderFile {
  path: string;
  size: number;
  text(): Promise<string>;
}

/** Reads the app from the folder's top level; throws an Error whose message says what is missing. */
export async function readAppFolder(files: readonly FolderFile[]): Promise<AppFolder> {
  if (!files.length) throw new Error('the folder is empty');
  const folder = files[0]!.path.split('/')[0] ?? '';
  // Only the folder's own files: an app store checkout has one folder per app below it.
  const top = new Map(files.filter((file) => file.path.split('/').length === 2).map((file) => [file.path.split('/')[1]!, file]));
  const composeName = COMPOSE_NAMES.find((name) => top.has(name));
  if (!composeName) {
    const nested = files.some((file) => COMPOSE_NAMES.includes(file.path.split('/').pop()!));
    throw new Error(`${folder} has no docker-compose.yml of its own${nested ? '; choose the folder of one app, not a folder of apps' : ''}`);
  }
  const text = async (name: string): Promise<string> => {
    const file = top.get(name)!;
    if (file.size > MAX_FILE_BYTES) throw new Error(`${name} is ${file.size} bytes; a compose file or manifest is at most ${MAX_FILE_BYTES}`);
    return file.text();
  };
  const read = [composeName];
  const compose = await text(composeName);
  // Umbrel's exports.sh sets the app's own variables with `export NAME=value`; the .env format reads those lines.
  const envParts: string[] = [];
  for (const name of ['.env', 'exports.sh']) {
    if (!top.has(name)) continue;
    read.push(name);
    envParts.push(await text(name));
  }
  // Other .env files (docker-compose.env) are what env_file: keys name.
  const envFiles: Record<string, string> = {};
  for (const name of [...top.keys()].filter((n) => n.endsWith('.env') && n !== '.env').sort()) {
    read.push(name);
    envFiles[name] = await text(name);
  }
  const env: Variables = { ...(envParts.length && { env: envParts.join('\n') }), ...(Object.keys(envFiles).length && { env_files: envFiles }) };
  const manifestName = MANIFEST_NAMES.find((name) => top.has(name));
  if (!manifestName) return { folder, read, source: { compose, ...env } };
  read.unshift(manifestName);
  return { folder, read, source: { umbrel: { manifest: await text(manifestName), compose }, ...env } };
}

/** The browser's FileList as folder files (webkitRelativePath is the path below the chosen folder's parent). */
export function folderFiles(list: FileList | null): FolderFile[] {
  return Array.from(list ?? []).map((file) => ({ path: file.webkitRelativePath || file.name, size: file.size, text: () => file.text() }));
}
