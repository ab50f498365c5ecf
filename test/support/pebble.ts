// Debian's real ACME test server (pebble) on loopback, with pebble-challtestsrv as its DNS, so
// names resolve only when a test says so. Never a public ACME directory.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import https from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { freePort } from '../../image/qemu.js';
import { selfSignedCert } from './certs.js';
import { waitFor } from './processes.js';

export interface PebbleOptions {
  /** Lifetime of issued certificates (pebble's default is five years). */
  validitySeconds?: number;
  /** Where pebble fetches HTTP-01 challenges (e.g. a relay's plain-HTTP port); default a free port. */
  httpPort?: number;
  /** An address every name resolves to unless resolve() says otherwise (make run); default none. */
  defaultAddress?: string;
}

export interface Pebble {
  directoryUrl: string;
  /** The CA of pebble's own HTTPS (the ACME API), PEM, and the same in a file for NODE_EXTRA_CA_CERTS. */
  apiCa: string;
  apiCaFile: string;
  /** The root that signs issued certificates (from the management port), PEM. */
  issuerRoot(): Promise<string>;
  /** Where pebble validates HTTP-01: http://<name>:httpPort/.well-known/acme-challenge/<token>. */
  httpPort: number;
  /** Makes name resolve to address for pebble's validation (challtestsrv /add-a). */
  resolve(name: string, address?: string): Promise<void>;
  stop(): Promise<void>;
}

export async function startPebble(options: PebbleOptions = {}): Promise<Pebble> {
  const dir = await mkdtemp(path.join(tmpdir(), 'piccolo-pebble-'));
  const children: ChildProcess[] = [];
  const stop = async () => {
    await Promise.all(children.map(stopChild));
    await rm(dir, { recursive: true, force: true });
  };
  try {
    const [acmePort, managementPort, freeHttpPort, tlsPort, dnsPort, challtestPort] = await distinctFreePorts(6);
    const httpPort = options.httpPort ?? freeHttpPort!;
    const apiCaFile = path.join(dir, 'cert.pem');
    const keyFile = path.join(dir, 'key.pem');
    const { key, cert } = await selfSignedCert(['localhost', '127.0.0.1']);
    await writeFile(keyFile, key);
    await writeFile(apiCaFile, cert);
    const config = {
      pebble: {
        listenAddress: `127.0.0.1:${acmePort}`,
        managementListenAddress: `127.0.0.1:${managementPort}`,
        certificate: apiCaFile,
        privateKey: keyFile,
        httpPort,
        tlsPort,
        ocspResponderURL: '',
        externalAccountBindingRequired: false,
        ...(options.validitySeconds === undefined ? {} : { certificateValidityPeriod: options.validitySeconds }),
      },
    };
    const configFile = path.join(dir, 'pebble-config.json');
    await writeFile(configFile, JSON.stringify(config));

    // No default addresses unless asked: a name then resolves only after resolve(), so "does not resolve" is testable.
    children.push(
      startChild('pebble-challtestsrv', ['-dns01', `127.0.0.1:${dnsPort}`, '-http01', '', '-https01', '', '-tlsalpn01', '', '-management', `127.0.0.1:${challtestPort}`, '-defaultIPv4', options.defaultAddress ?? '', '-defaultIPv6', ''], {}),
    );
    // NOSLEEP: validation at once. AUTHZREUSE 0: every order validates afresh, so a test of a
    // failing challenge cannot pass on an authorization left over from an earlier order.
    children.push(startChild('pebble', ['-config', configFile, '-dnsserver', `127.0.0.1:${dnsPort}`], { PEBBLE_VA_NOSLEEP: '1', PEBBLE_AUTHZREUSE: '0' }));

    const apiCa = await readFile(apiCaFile, 'utf8');
    const directoryUrl = `https://127.0.0.1:${acmePort}/dir`;
    const get = (url: string) => httpsGet(url, apiCa);
    await waitFor(() => get(directoryUrl).then(() => true, () => undefined), 10_000, 'pebble directory');
    await waitFor(() => fetch(`http://127.0.0.1:${challtestPort}/`).then(() => true, () => undefined), 10_000, 'pebble-challtestsrv');

    return {
      directoryUrl,
      apiCa,
      apiCaFile,
      httpPort,
      issuerRoot: () => get(`https://127.0.0.1:${managementPort}/roots/0`),
      async resolve(name, address = '127.0.0.1') {
        const res = await fetch(`http://127.0.0.1:${challtestPort}/add-a`, { method: 'POST', body: JSON.stringify({ host: `${name}.`, addresses: [address] }) });
        if (!res.ok) throw new Error(`challtestsrv add-a ${name}: HTTP ${res.status}`);
      },
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

function startChild(command: string, args: string[], env: Record<string, string>): ChildProcess {
  const child = spawn(command, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr = (stderr + chunk).slice(-4000)));
  child.once('exit', (code, signal) => {
    if (code !== 0 && signal !== 'SIGTERM') process.stderr.write(`${command} exited (${code ?? signal}): ${stderr}\n`);
  });
  return child;
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await exited;
}

async function distinctFreePorts(count: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < count) ports.add(await freePort());
  return [...ports];
}

function httpsGet(url: string, ca: string): Promise<string> {
  return new Promise((resolve, reject) => {
    https
      .get(url, { ca, agent: false }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk) => (body += chunk));
        res.on('end', () => (res.statusCode === 200 ? resolve(body) : reject(new Error(`GET ${url}: HTTP ${res.statusCode}`))));
      })
      .on('error', reject);
  });
}

/**
 * Makes acme-client in this process trust pebble's HTTPS, until the returned undo runs.
 * The daemon itself gets apiCaFile through NODE_EXTRA_CA_CERTS, but Node reads that only at
 * process start, so an in-process test sets the agent on acme-client's documented axios export.
 */
export async function trustPebbleApi(pebble: Pebble): Promise<() => void> {
  const { axios } = await import('acme-client');
  const previous = axios.defaults.httpsAgent;
  axios.defaults.httpsAgent = new https.Agent({ ca: pebble.apiCa });
  return () => {
    axios.defaults.httpsAgent = previous;
  };
}
