// PortalAddress, the portal as each client reaches it, on requests shaped as the front door sees
// them: which port the connection arrived on (an app's, a portal listener's, none for the tunnel),
// the address it reached, the Host header and the request target.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type http from 'node:http';
import { PortalAddress } from '../../services/proxy/portal-address.js';

const PORTAL_NAMES = ['piccolo.local', 'piccolo.example.com'];

function request(host: string | undefined, { localPort, localAddress = '127.0.0.1', url = '/page?x=1' }: { localPort?: number; localAddress?: string; url?: string }): http.IncomingMessage {
  return { headers: host === undefined ? {} : { host }, url, socket: { localPort, localAddress } } as unknown as http.IncomingMessage;
}

function address(ports: number[], loginUrl = ''): PortalAddress {
  return new PortalAddress({ portalPorts: new Set(ports), portalHostnames: () => PORTAL_NAMES, loginUrl });
}

test('on an app port: the same host, the portal listener port; the standard port for the scheme is left out', () => {
  assert.is(address([8000]).origin(request('127.0.0.1:35001', { localPort: 35001 }), false), 'http://127.0.0.1:8000');
  assert.is(address([8000]).origin(request('nas.home:35001', { localPort: 35001 }), true), 'https://nas.home:8000');
  assert.is(address([80, 443]).origin(request('192.168.1.20:35001', { localPort: 35001 }), false), 'http://192.168.1.20');
  assert.is(address([80, 443]).origin(request('192.168.1.20:35001', { localPort: 35001 }), true), 'https://192.168.1.20');
  assert.is(address([8000]).origin(request('[fd00::5]:35001', { localPort: 35001 }), false), 'http://[fd00::5]:8000');
});

test('by name (portal port or tunnel): the nearest portal name on the port the client used, else the address it reached', () => {
  assert.is(address([8000]).origin(request('web-blog.piccolo.local:8000', { localPort: 8000 }), false), 'http://piccolo.local:8000');
  assert.is(address([443]).origin(request('web-blog.apps.example.com', { localPort: undefined }), true), 'https://piccolo.example.com');
  assert.is(address([8000]).origin(request('35001-blog:8000', { localPort: 8000, localAddress: '::ffff:192.168.1.20' }), false), 'http://192.168.1.20:8000');
  assert.is(address([8000]).origin(request('35001-blog:8000', { localPort: 8000, localAddress: 'fd00::5' }), false), 'http://[fd00::5]:8000');
  // The tunnel's unix socket has no address: the first portal name then.
  assert.is(address([443]).origin(request('35001-blog', { localPort: undefined, localAddress: '' }), true), 'https://piccolo.local');
});

test('sign-in: next is the URL asked for on that host, or nothing when the target names another origin', () => {
  const signIn = (req: http.IncomingMessage) => {
    const result = address([8000]).signIn(req, false);
    return 'url' in result ? new URL(result.url) : result;
  };
  const plain = signIn(request('127.0.0.1:35001', { localPort: 35001 })) as URL;
  assert.is(plain.href, `http://127.0.0.1:8000/?next=${encodeURIComponent('http://127.0.0.1:35001/page?x=1')}`);
  assert.is((signIn(request('127.0.0.1:35001', { localPort: 35001, url: 'http://evil.example/x' })) as URL).searchParams.get('next'), null);
  assert.is((signIn(request('127.0.0.1:35001', { localPort: 35001, url: 'http://127.0.0.1:35001/x' })) as URL).searchParams.get('next'), 'http://127.0.0.1:35001/x');
  assert.is((signIn(request('127.0.0.1:35001', { localPort: 35001, url: '*' })) as URL).searchParams.get('next'), null);
  assert.equal(signIn(request(undefined, { localPort: 35001 })), { badHost: 'host: the request has no Host header' });
  for (const host of ['evil.example/x', 'a@b', 'a b', 'x:y', '', 'a:123456', 'a:65536']) {
    assert.equal(signIn(request(host, { localPort: 35001 })), { badHost: 'host: must be a host name or address with an optional port' }, host);
    assert.is(address([8000]).origin(request(host, { localPort: 8000 }), false), undefined, host);
  }
});

test('a configured sign-in URL is used as given, "{host}" being the host name asked for', () => {
  const result = address([8000], 'https://{host}:9443/login').signIn(request('nas.home:35001', { localPort: 35001 }), false);
  assert.equal(result, { url: `https://nas.home:9443/login?next=${encodeURIComponent('http://nas.home:35001/page?x=1')}` });
});

test.run();
