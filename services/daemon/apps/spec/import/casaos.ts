// CasaOS's compose files carry the store's metadata in x-casaos: the main service, the title,
// icon and tagline (each by language), and port_map, the host port of the web interface. On
// Piccolo the service port behind port_map becomes the app's main listener.
import type { AppAbout, MainListener } from './about.js';
import type { ServiceInput } from '../types.js';
import { isMapping, type StackContext } from './service.js';

export function casaosMeta(meta: Record<string, unknown>): AppAbout {
  const about: AppAbout = { source: 'casaos' };
  const fields: [keyof AppAbout, string][] = [['title', 'title'], ['tagline', 'tagline'], ['description', 'description'], ['icon', 'icon'], ['category', 'category'], ['developer', 'developer'], ['path', 'index']];
  for (const [key, source] of fields) {
    const value = localized(meta[source]);
    if (value !== undefined) (about as unknown as Record<string, string>)[key] = value;
  }
  if (about.developer === undefined && localized(meta.author) !== undefined) about.developer = localized(meta.author);
  return about;
}

/** CasaOS writes text per language ({ en_us: ..., zh_cn: ... }); English first. */
function localized(value: unknown): string | undefined {
  if (typeof value === 'string' || typeof value === 'number') return String(value) || undefined;
  if (!isMapping(value)) return undefined;
  const text = value.en_us ?? value.en_US ?? value.en ?? Object.values(value)[0];
  return typeof text === 'string' && text !== '' ? text : undefined;
}

export function casaosListener(meta: Record<string, unknown>, services: Record<string, ServiceInput>, stack: StackContext, substitute: (text: string) => string): MainListener | undefined {
  const main = typeof meta.main === 'string' ? (stack.serviceNames.get(meta.main) ?? meta.main) : Object.keys(services)[0];
  if (main === undefined || !services[main]) {
    if (meta.main !== undefined) stack.problems.push(`x-casaos.main: ${String(meta.main)} is not a service of this file`);
    return undefined;
  }
  const https = meta.scheme === 'https';
  const shape = https ? { flow: 'tls' as const, protocol: 'raw' as const } : { protocol: 'http' as const };
  if (meta.port_map === undefined || meta.port_map === '') return undefined;
  // Some files write port_map as ${WEBUI_PORT:-8080}, like the ports it names.
  const hostPort = Number(typeof meta.port_map === 'string' ? substitute(meta.port_map) : meta.port_map);
  if (!Number.isInteger(hostPort) || hostPort < 1 || hostPort > 65535) {
    stack.warnings.push(`x-casaos.port_map: ${String(meta.port_map)} is not a port; the web interface is not marked`);
    return undefined;
  }
  const tcp = stack.published.filter(({ port }) => port.protocol === 'tcp');
  const published = tcp.find(({ service, port }) => service === main && port.published === hostPort) ?? tcp.find(({ port }) => port.published === hostPort);
  if (published) return { service: published.service, port: published.port.container, ...shape };
  // On the host's network the app binds the port itself: port_map is then its own port.
  if (services[main]!.network_mode === 'host') return { service: main, port: hostPort, ...shape };
  const own = tcp.filter(({ service }) => service === main);
  if (own.length === 1) {
    stack.warnings.push(`x-casaos.port_map: no port is published as ${hostPort}; the web interface is taken to be ${main}'s port ${own[0]!.port.container}`);
    return { service: main, port: own[0]!.port.container, ...shape };
  }
  stack.warnings.push(`x-casaos.port_map: no service publishes the port ${hostPort}; the web interface is not marked`);
  return undefined;
}
