// Remote access settings as a person enters them, checked into the form the control store keeps.
// The device secret is checked here too, but it never goes to the store: it lives in a file in
// the encrypted bootstrap volume (device-secret.ts).
import { BadRequestError } from '../../common/errors.js';

/** What the control store keeps (schema v3, `remote`): everything but the secret. */
export interface RemoteSettings {
  /** wss://host[:port]/connect */
  relayUrl: string;
  /** The portal's public name, e.g. portal.example.com. */
  portalHostname: string;
  /** App listeners answer at <listener>-<app>.<appDomain>. */
  appDomain: string;
  enabled: boolean;
}

export interface RemoteConfigInput {
  relayUrl: string;
  deviceSecret: string;
  portalHostname: string;
  appDomain: string;
}

const LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

/**
 * The relay URL in its one accepted form, or a sentence saying what is wrong with it (without
 * the field name). The relay's hub matches the path exactly (`/connect/` is a 404 there).
 */
export function checkRelayUrl(raw: string): { url: URL } | { problem: string } {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return { problem: 'is not a URL; write it as wss://relay.example.com:8443/connect' };
  }
  if (url.protocol !== 'wss:') return { problem: `must start with wss:// (not ${url.protocol}//): the relay is reached over TLS` };
  if (url.username || url.password) return { problem: 'must not hold a user name or password; the device secret is entered separately' };
  if (url.pathname !== '/connect') return { problem: `must end with the path /connect (not ${url.pathname})` };
  if (url.search || url.hash) return { problem: 'must have no query or fragment' };
  if (!url.hostname) return { problem: 'has no host name' };
  return { url };
}

/** A fully qualified name (two labels at least), lower-cased; undefined when it is not one. */
export function normalizeFqdn(raw: string): string | undefined {
  const name = raw.trim().toLowerCase().replace(/\.$/, '');
  const labels = name.split('.');
  if (name.length > 253 || labels.length < 2 || !labels.every((label) => LABEL.test(label))) return undefined;
  // An all-digit last label is an IP address, not a name.
  if (/^\d+$/.test(labels[labels.length - 1]!)) return undefined;
  return name;
}

/** Checks every field at once; a 400 lists each problem, starting with its field. */
export function checkRemoteConfig(input: RemoteConfigInput): Omit<RemoteSettings, 'enabled'> {
  const problems: string[] = [];
  const relay = checkRelayUrl(input.relayUrl);
  if ('problem' in relay) problems.push(`relayUrl: ${relay.problem}`);
  const portalHostname = normalizeFqdn(input.portalHostname);
  if (!portalHostname) problems.push('portalHostname: must be a full DNS name such as portal.example.com');
  const appDomain = normalizeFqdn(input.appDomain);
  if (!appDomain) problems.push('appDomain: must be a full DNS name such as apps.example.com');
  // The schema bounds its length; a secret of spaces, or with line breaks, is a paste accident.
  if (input.deviceSecret.trim() !== input.deviceSecret || /[\r\n]/.test(input.deviceSecret)) {
    problems.push('deviceSecret: must not start or end with spaces or hold line breaks');
  }
  if (problems.length) throw new BadRequestError('invalid remote configuration', problems);
  return { relayUrl: (relay as { url: URL }).url.href, portalHostname: portalHostname!, appDomain: appDomain! };
}
