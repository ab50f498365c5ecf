// Where the Services screen and the Open links send a browser: the proxy's public port on the host
// the page came from (never the host-bind port, which only answers on the device), the scheme by
// protocol and flow, and the remote name only while remote access is on and names that listener.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { ServiceEntry } from '../../services/daemon/apps/manager.js';
import { describeListener, serviceUrls } from '../../services/daemon/portal/src/screens/services/urls.js';
import type { RemoteStatus } from '../../services/daemon/remote/remote-access.js';

const entry = (over: Partial<ServiceEntry> = {}): ServiceEntry => ({
  app: 'blog', listener: 'web', guestPort: 80, hostBindPort: 15003, publicPort: 8081, localUrl: 'http://127.0.0.1:15003', protocol: 'http', flow: 'tcp', ...over,
});

const remote = (enabled: boolean): RemoteStatus => ({
  configured: true, enabled, relayUrl: 'wss://relay.example.net/connect', portalHostname: 'home.example.net', appDomain: 'apps.example.net', deviceSecretSet: true,
  hostnames: enabled
    ? [
        { hostname: 'home.example.net', kind: 'portal', mode: 'local', tls: 'device' },
        { hostname: 'web-blog.apps.example.net', kind: 'app', app: 'blog', listener: 'web', flow: 'tcp', protocol: 'http', mode: 'local', tls: 'device' },
        { hostname: 'tls-vault.apps.example.net', kind: 'app', app: 'vault', listener: 'tls', flow: 'tls', protocol: 'raw', mode: 'local', tls: 'passthrough' },
      ]
    : [],
  tunnel: { reporting: false }, certificates: [],
});

test('local addresses: the public port on the page host, scheme by protocol and flow', () => {
  assert.equal(serviceUrls(entry(), undefined, 'piccolo.local'), { local: 'http://piccolo.local:8081/', remote: undefined, openable: true });
  assert.is(serviceUrls(entry({ flow: 'tls' }), undefined, '192.168.1.20').local, 'https://192.168.1.20:8081/');
  assert.equal(serviceUrls(entry({ protocol: 'websocket' }), undefined, 'piccolo.local'), { local: 'ws://piccolo.local:8081/', remote: undefined, openable: false });
  assert.is(serviceUrls(entry({ protocol: 'raw' }), undefined, 'piccolo.local').local, 'piccolo.local:8081');
  assert.is(serviceUrls(entry(), undefined, 'fe80::1').local, 'http://[fe80::1]:8081/', 'an IPv6 host in brackets');
});

test('remote addresses: only while enabled, only for the listener named, on the relay TLS port', () => {
  assert.is(serviceUrls(entry(), remote(true), 'piccolo.local').remote, 'https://web-blog.apps.example.net/');
  assert.is(serviceUrls(entry(), remote(false), 'piccolo.local').remote, undefined, 'disabled: no remote address');
  assert.is(serviceUrls(entry({ listener: 'admin' }), remote(true), 'piccolo.local').remote, undefined, 'no name for that listener');
  assert.is(serviceUrls(entry({ app: 'vault', listener: 'tls', protocol: 'raw', flow: 'tls' }), remote(true), 'piccolo.local').remote, 'tls-vault.apps.example.net:443');
});

test('a udp listener: a udp:// address on the local network, never a remote one (the relay carries TCP only)', () => {
  const udp = entry({ app: 'dns', listener: 'dns', protocol: 'udp', publicPort: 35053 });
  // Even a status that named it (an older daemon's) gives no remote address.
  const on = remote(true);
  const named = { ...on, hostnames: [...on.hostnames, { hostname: 'dns-dns.apps.example.net', kind: 'app', app: 'dns', listener: 'dns', flow: 'tcp', protocol: 'udp', mode: 'local', tls: 'device' }] } as RemoteStatus;
  assert.equal(serviceUrls(udp, named, '192.168.1.20'), { local: 'udp://192.168.1.20:35053', remote: undefined, openable: false });
  assert.is(describeListener(udp), 'UDP');
});

test('how a listener talks, in words', () => {
  assert.is(describeListener({ protocol: 'http', flow: 'tcp' }), 'HTTP');
  assert.is(describeListener({ protocol: 'raw', flow: 'tls' }), "raw TCP over TLS (the app's own)");
});

test.run();
