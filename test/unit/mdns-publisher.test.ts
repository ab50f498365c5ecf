// The mDNS publisher's decisions (services/daemon/mdns/publisher.ts), against a stand-in that keeps
// the responder contract Avahi keeps in test/integration/mdns.test.ts: a host name it holds (and
// renames to <name>-N when another host has it), publications that end with a reason. The
// integration test covers the real Avahi; these cover the paths it cannot provoke cheaply.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createLogger } from '../../services/common/logger.js';
import type { MdnsResponder } from '../../services/daemon/mdns/avahi.js';
import { MdnsPublisher, type MdnsStatus } from '../../services/daemon/mdns/publisher.js';
import { DeviceName } from '../../services/daemon/system/device-name.js';

const logger = createLogger({ service: 'test', write: () => {} });

class StandIn implements MdnsResponder {
  held = 'vm.local';
  up = true;
  /** Host names other hosts on the LAN hold. */
  takenHosts = new Set<string>();
  /** App names other hosts hold: a publication of one ends with Avahi's words. */
  takenNames = new Set<string>();
  setCalls: string[] = [];
  live = new Map<string, number>();

  async hostName() {
    if (!this.up) throw new Error('the name service (avahi-daemon) is not running');
    return { fqdn: this.held, probing: false };
  }
  async hostAddress() {
    return '10.0.0.7';
  }
  async setHostName(label: string) {
    if (!this.up) throw new Error('the name service (avahi-daemon) is not running');
    this.setCalls.push(label);
    let n = 1;
    let name = label;
    while (this.takenHosts.has(name)) name = `${label}-${++n}`;
    this.held = `${name}.local`;
  }
  publishAddress(name: string, _address: string, onEnd: (reason: string) => void) {
    if (this.takenNames.has(name)) {
      setImmediate(() => onEnd('Failed to add address: Local name collision'));
      return { stop: () => {} };
    }
    this.live.set(name, (this.live.get(name) ?? 0) + 1);
    return { stop: () => void this.live.set(name, this.live.get(name)! - 1) };
  }
  published(): string[] {
    return [...this.live].filter(([, n]) => n > 0).map(([name]) => name).sort();
  }
}

function publisher(responder: StandIn, chosen = { name: 'piccolo' }) {
  const seen: MdnsStatus[] = [];
  const p = new MdnsPublisher({ responder, chosenName: () => chosen.name, pollMs: 60_000, onChange: (s) => seen.push(s), logger });
  return { p, seen };
}

test('a rename the responder already holds (piccolo-2) is kept: asking again would only repeat the conflict', async () => {
  const responder = new StandIn();
  responder.held = 'piccolo-2.local';
  const { p } = publisher(responder);
  await p.start();
  assert.equal(responder.setCalls, []);
  assert.equal(p.status, { state: 'renamed', hostname: 'piccolo-2.local' });
  await p.stop();
});

test('a responder holding another name (it restarted with the system host name) is asked for ours, and a conflict is reported as renamed', async () => {
  const responder = new StandIn();
  responder.takenHosts.add('piccolo');
  const { p } = publisher(responder);
  await p.start();
  assert.equal(responder.setCalls, ['piccolo']);
  assert.equal(p.status, { state: 'renamed', hostname: 'piccolo-2.local' });
  responder.held = 'vm.local';
  responder.takenHosts.clear();
  await p.tick();
  assert.equal(responder.setCalls, ['piccolo', 'piccolo']);
  assert.equal(p.status, { state: 'announced', hostname: 'piccolo.local' });
  await p.stop();
});

test('app names: published below the name in use, withdrawn when gone, moved on a rename', async () => {
  const responder = new StandIn();
  const chosen = { name: 'piccolo' };
  const { p } = publisher(responder, chosen);
  await p.start();
  p.setAppLabels(['web-blog', 'dns-pihole']);
  await p.tick();
  assert.equal(responder.published(), ['dns-pihole.piccolo.local', 'web-blog.piccolo.local']);
  p.setAppLabels(['web-blog']);
  await p.tick();
  assert.equal(responder.published(), ['web-blog.piccolo.local']);
  chosen.name = 'homebox';
  await p.tick();
  assert.equal(responder.published(), ['web-blog.homebox.local']);
  await p.stop();
  assert.equal(responder.published(), [], 'stop withdraws every name');
});

test('an app name another host holds is named in the reason and left alone for a while; the others are published', async () => {
  const responder = new StandIn();
  responder.takenNames.add('web-blog.piccolo.local');
  const { p } = publisher(responder);
  await p.start();
  p.setAppLabels(['web-blog', 'web-wiki']);
  await p.tick();
  await new Promise((resolve) => setImmediate(resolve));
  await p.tick();
  assert.equal(responder.published(), ['web-wiki.piccolo.local']);
  assert.is(p.status.state, 'announced');
  assert.match(p.status.reason ?? '', /web-blog\.piccolo\.local: another host on the network holds this name/);
  await p.stop();
});

test('no responder: off with the reason, nothing published; the device name then says the chosen name is in use', async () => {
  const responder = new StandIn();
  const { p, seen } = publisher(responder);
  await p.start();
  p.setAppLabels(['web-blog']);
  await p.tick();
  assert.equal(responder.published(), ['web-blog.piccolo.local']);
  responder.up = false;
  await p.tick();
  assert.equal(responder.published(), []);
  assert.equal(p.status, { state: 'off', hostname: 'piccolo.local', reason: 'the name service (avahi-daemon) is not running' });
  assert.is(seen.at(-1)?.state, 'off');
  const name = new DeviceName({ fallback: 'piccolo', cacheFile: '/nonexistent/device-name', logger });
  name.setAnnounced({ state: 'renamed', hostname: 'piccolo-2.local' });
  assert.is(name.inUse, 'piccolo-2');
  assert.equal(name.info.mdns, { state: 'renamed', hostname: 'piccolo-2.local' });
  // A status about another name (the responder not yet told of a rename) is not taken as ours.
  name.setAnnounced({ state: 'announced', hostname: 'elsewhere.local' });
  assert.is(name.inUse, 'piccolo');
  name.setAnnounced(p.status);
  assert.is(name.inUse, 'piccolo');
  await p.stop();
});

test.run();
