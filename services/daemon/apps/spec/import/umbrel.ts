// An Umbrel app folder: umbrel-app.yml (the store's manifest: id, name, tagline, port...) and its
// docker-compose.yml, whose app_proxy service is umbrelOS's proxy in front of the app. Its
// APP_HOST (a service, as `<app id>_<service>_1`, a container name or an IP variable) and
// APP_PORT say where the web interface is: on Piccolo that becomes the app's main listener.
import { BadRequestError } from '../../../../common/errors.js';
import type { AppAbout, MainListener } from './about.js';
import { parseYamlMapping } from '../safe-yaml.js';
import type { ServiceInput } from '../types.js';
import { isMapping, type StackContext } from './service.js';

export interface UmbrelManifest {
  id: string;
  name?: string;
  tagline?: string;
  description?: string;
  category?: string;
  version?: string;
  website?: string;
  developer?: string;
  icon?: string;
  path?: string;
  defaultUsername?: string;
  defaultPassword?: string;
  dependencies: string[];
}

const INVALID_MANIFEST = 'cannot import Umbrel app';

export function parseUmbrelManifest(text: string): UmbrelManifest {
  const doc = parseYamlMapping(text, INVALID_MANIFEST);
  const problems: string[] = [];
  const text_ = (key: string): string | undefined => {
    const value = doc[key];
    if (value === undefined || value === null) return undefined;
    if (typeof value === 'string' || typeof value === 'number') return String(value);
    problems.push(`umbrel-app.yml ${key}: must be text`);
    return undefined;
  };
  const id = text_('id');
  if (id === undefined || !/^[a-z0-9][a-z0-9-]*$/.test(id)) problems.push(`umbrel-app.yml id: ${id === undefined ? 'is required' : `${id} must be lower-case letters, digits and -`}`);
  const dependencies = Array.isArray(doc.dependencies) ? doc.dependencies.map(String) : [];
  if (problems.length) throw new BadRequestError(INVALID_MANIFEST, problems);
  const manifest: UmbrelManifest = { id: id!, dependencies };
  for (const key of ['name', 'tagline', 'description', 'category', 'version', 'website', 'developer', 'icon', 'path', 'defaultUsername', 'defaultPassword'] as const) {
    const value = text_(key);
    if (value !== undefined && value !== '') manifest[key] = value;
  }
  return manifest;
}

export function umbrelMeta(manifest: UmbrelManifest, substitute: (text: string) => string): AppAbout {
  const about: AppAbout = {
    source: 'umbrel',
    title: manifest.name ?? manifest.id,
    // The Umbrel app gallery's icon, which the store shows for every app.
    icon: manifest.icon ?? `https://getumbrel.github.io/umbrel-apps-gallery/${manifest.id}/icon.svg`,
  };
  for (const key of ['tagline', 'description', 'category', 'version', 'website', 'developer', 'path', 'defaultUsername'] as const) {
    if (manifest[key] !== undefined) about[key] = manifest[key];
  }
  // "$APP_PASSWORD": the generated one, which the person needs to sign in the first time.
  if (manifest.defaultPassword !== undefined) about.defaultPassword = substitute(manifest.defaultPassword);
  return about;
}

/** Notes the manifest's dependencies: other Umbrel apps Piccolo does not install with this one. */
export function umbrelDependencyWarnings(manifest: UmbrelManifest): string[] {
  return manifest.dependencies.map((dependency, i) => `umbrel-app.yml dependencies[${i}]: ${dependency} is another Umbrel app; install it on Piccolo first if this app needs it`);
}

const IP = /^\d{1,3}(?:\.\d{1,3}){3}$/;

/** app_proxy's APP_HOST and APP_PORT as the service and container port of the main listener. */
export function resolveAppHost(proxy: Record<string, unknown>, services: Record<string, ServiceInput>, stack: StackContext): MainListener | undefined {
  const base = 'services.app_proxy.environment';
  const environment = environmentOf(proxy.environment);
  // A variable without a value there is refused already; its empty value says nothing more.
  if (['APP_HOST', 'APP_PORT'].some((key) => stack.unresolved.has(`${base}.${key}`))) return undefined;
  const host = environment.APP_HOST;
  const portText = environment.APP_PORT;
  if (host === undefined) return void stack.problems.push(`${base}.APP_HOST: is required; it names the service with the web interface`);
  const port = Number(portText);
  if (portText === undefined || !Number.isInteger(port) || port < 1 || port > 65535) {
    return void stack.problems.push(`${base}.APP_PORT: ${portText === undefined ? 'is required' : `${portText} is not a port 1-65535`}`);
  }
  const service = serviceOfHost(host, services, stack);
  if (!service) return void stack.problems.push(`${base}.APP_HOST: ${host} is not a service of this file (write the service's name, or <app id>_<service>_1)`);
  if (environment.PROXY_AUTH_ADD === 'false') stack.warnings.push(`${base}.PROXY_AUTH_ADD: the web interface stays behind the device's sign-in; make the listener public in the app spec if the app signs people in itself`);
  for (const key of ['PROXY_AUTH_WHITELIST', 'PROXY_AUTH_BLACKLIST']) {
    if (environment[key] !== undefined) stack.warnings.push(`${base}.${key}: ignored; the whole listener is behind the device's sign-in`);
  }
  return { service, port };
}

function serviceOfHost(host: string, services: Record<string, ServiceInput>, stack: StackContext): string | undefined {
  if (services[host]) return host;
  const byOriginal = stack.serviceNames.get(host) ?? stack.aliases.get(host);
  if (byOriginal) return byOriginal;
  const container = /^[A-Za-z0-9-]+[_-](.+)[_-]1$/.exec(host)?.[1];
  if (container && stack.serviceNames.has(container)) return stack.serviceNames.get(container);
  // An address: the service on the host's network (umbrelOS writes the bridge or the device's IP).
  if (IP.test(host) || host === 'localhost') {
    const onHost = Object.entries(services).filter(([, service]) => service.network_mode === 'host');
    if (onHost.length === 1) return onHost[0]![0];
  }
  return undefined;
}

function environmentOf(value: unknown): Record<string, string> {
  if (isMapping(value)) return Object.fromEntries(Object.entries(value).map(([key, v]) => [key, String(v)]));
  if (!Array.isArray(value)) return {};
  return Object.fromEntries(value.map(String).filter((e) => e.includes('=')).map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)]));
}
