// Finds the Debian mirror this machine's apt already uses, so the image description never names
// a registry host: config.kiwi says @APT_MIRROR@ and the build substitutes it.
import { readFile, readdir } from 'node:fs/promises';
import path from 'node:path';

export interface AptSource {
  uri: string;
  suites: string[];
  components: string[];
}

export type ReadText = (file: string) => Promise<string>;
export type ListDir = (dir: string) => Promise<string[]>;

// deb822 format (/etc/apt/sources.list.d/*.sources): blank-line separated stanzas.
export function parseDeb822(text: string): AptSource[] {
  const sources: AptSource[] = [];
  for (const stanza of text.split(/\n\s*\n/)) {
    const fields = new Map<string, string>();
    for (const line of stanza.split('\n')) {
      const match = /^([A-Za-z-]+):\s*(.*)$/.exec(line);
      if (match) fields.set(match[1].toLowerCase(), match[2].trim());
    }
    if (!(fields.get('types') ?? '').split(/\s+/).includes('deb')) continue;
    if ((fields.get('enabled') ?? 'yes').toLowerCase() === 'no') continue;
    const words = (key: string) => (fields.get(key) ?? '').split(/\s+/).filter(Boolean);
    for (const uri of words('uris')) sources.push({ uri, suites: words('suites'), components: words('components') });
  }
  return sources;
}

// One-line format (/etc/apt/sources.list): "deb [options] URI suite component...".
export function parseSourcesList(text: string): AptSource[] {
  const sources: AptSource[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.replace(/#.*/, '').replace(/\[[^\]]*\]/, '').trim();
    const [type, uri, suite, ...components] = line.split(/\s+/);
    if (type === 'deb' && uri && suite) sources.push({ uri, suites: [suite], components });
  }
  return sources;
}

// The main archive carries the release suite itself (not -security/-updates) with "main";
// third-party repositories (nodesource, google) use their own suite names and are skipped.
export function pickDebianMirror(sources: AptSource[], codename: string): string | undefined {
  const main = sources.find((s) => s.suites.includes(codename) && s.components.includes('main'));
  return main?.uri.replace(/\/+$/, '');
}

export async function findAptMirror(
  codename = 'bookworm',
  aptDir = '/etc/apt',
  read: ReadText = (file) => readFile(file, 'utf8'),
  list: ListDir = (dir) => readdir(dir),
): Promise<string> {
  const sources: AptSource[] = [];
  const partsDir = path.join(aptDir, 'sources.list.d');
  const parts = await list(partsDir).catch(() => [] as string[]);
  for (const name of parts.filter((n) => n.endsWith('.sources')).sort()) {
    sources.push(...parseDeb822(await read(path.join(partsDir, name))));
  }
  for (const name of parts.filter((n) => n.endsWith('.list')).sort()) {
    sources.push(...parseSourcesList(await read(path.join(partsDir, name))));
  }
  sources.push(...parseSourcesList(await read(path.join(aptDir, 'sources.list')).catch(() => '')));
  const mirror = pickDebianMirror(sources, codename);
  if (!mirror) throw new Error(`no apt source for "${codename} main" under ${aptDir}: cannot fill @APT_MIRROR@`);
  return mirror;
}
