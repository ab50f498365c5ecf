// The device's mDNS responder is Avahi (avahi-daemon in the image): it answers for the host name,
// probes it first and, when another host on the LAN holds it, renames itself the RFC 6762 way
// (piccolo → piccolo-2). The daemon only tells it the name a person chose and publishes the apps'
// names through it, with Avahi's own tools: no D-Bus library, and nothing of mDNS written here.
import { spawn } from 'node:child_process';
import { runTool } from '../../common/run-tool.js';

/** What the publisher needs from a responder (an interface so a unit test can stand in for Avahi). */
export interface MdnsResponder {
  /** The host name held now ("piccolo-2.local") and whether it is still being probed; throws when no responder answers. */
  hostName(): Promise<{ fqdn: string; probing: boolean }>;
  /** The IPv4 address the responder announces for its host name: what the app names point at. */
  hostAddress(fqdn: string): Promise<string>;
  /** Asks the responder to take this host name (one label); it probes it and renames on conflict. */
  setHostName(label: string): Promise<void>;
  /** Publishes name → address until stop(); onEnd gets the responder's last words when it ends by itself (a collision, Avahi gone). */
  publishAddress(name: string, address: string, onEnd: (reason: string) => void): { stop(): void };
}

const AVAHI = ['--system', '--print-reply', '--dest=org.freedesktop.Avahi', '/'];
// avahi-common/defs.h: AvahiServerState.
const SERVER_REGISTERING = 1;
const TOOL_TIMEOUT_MS = 5_000;

/** The last non-empty line a tool wrote: what it says when it fails. */
function lastLine(text: string): string {
  return text.trim().split('\n').filter(Boolean).at(-1) ?? '';
}

async function dbusCall(method: string): Promise<string> {
  const res = await runTool('dbus-send', [...AVAHI, `org.freedesktop.Avahi.Server.${method}`], { timeoutMs: TOOL_TIMEOUT_MS });
  // Said to a person (System screen); the tool's own words go to the log.
  if (res.code !== 0) throw Object.assign(new Error('the name service (avahi-daemon) is not running'), { detail: lastLine(res.stderr) || `dbus-send exited ${res.code}` });
  // dbus-send --print-reply: a header line, then e.g. `   string "piccolo.local"` or `   int32 2`.
  const value = /^\s+(?:string|int32)\s+(.*)$/m.exec(res.stdout.toString())?.[1];
  if (value === undefined) throw new Error(`unexpected answer from avahi-daemon to ${method}`);
  return value.replace(/^"(.*)"$/, '$1');
}

/** Avahi through dbus-send, avahi-set-host-name and one avahi-publish child per name and address (setpriv from util-linux ties each to the daemon's life). */
export class AvahiResponder implements MdnsResponder {
  async hostName(): Promise<{ fqdn: string; probing: boolean }> {
    const fqdn = await dbusCall('GetHostNameFqdn');
    const state = Number(await dbusCall('GetState'));
    return { fqdn, probing: state === SERVER_REGISTERING };
  }

  async hostAddress(fqdn: string): Promise<string> {
    const res = await runTool('avahi-resolve', ['-4', '-n', fqdn], { timeoutMs: TOOL_TIMEOUT_MS + 2_000 });
    const address = res.stdout.toString().trim().split('\t')[1];
    if (res.code !== 0 || !address) throw new Error(`avahi-resolve ${fqdn}: ${lastLine(res.stderr) || 'no address'}`);
    return address;
  }

  async setHostName(label: string): Promise<void> {
    const res = await runTool('avahi-set-host-name', [label], { timeoutMs: TOOL_TIMEOUT_MS });
    // Avahi refuses to "change" the name to the one it holds; that is no failure.
    if (res.code !== 0 && !/not changed|same/i.test(res.stderr)) throw new Error(`avahi-set-host-name ${label}: ${lastLine(res.stderr) || `exited ${res.code}`}`);
  }

  publishAddress(name: string, address: string, onEnd: (reason: string) => void): { stop(): void } {
    // -R: no reverse (PTR) record, which Avahi already publishes for the host's own address.
    // setpriv --pdeathsig: the child ends with the daemon, even one killed hard. The daemon's unit
    // has KillMode=process (for gocryptfs), so systemd would leave it publishing a name nobody
    // keeps any more, and the next daemon's publication of it would collide.
    const child = spawn('setpriv', ['--pdeathsig', 'TERM', 'avahi-publish', '-a', '-R', name, address], { stdio: ['ignore', 'ignore', 'pipe'] });
    let said = '';
    let stopped = false;
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (said = (said + chunk).slice(-2000)));
    child.on('error', (err) => !stopped && onEnd(err.message));
    child.on('exit', (code, signal) => !stopped && onEnd(lastLine(said) || `avahi-publish ended (${code ?? signal})`));
    return {
      // SIGTERM: avahi-publish withdraws its record, and Avahi sends the goodbye (TTL 0) for it.
      stop: () => {
        stopped = true;
        child.kill('SIGTERM');
      },
    };
  }
}
