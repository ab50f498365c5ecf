// A udp listener as the runtime renders it: Podman publishes <guest port>/udp on 127.0.0.1, next to
// the same number over TCP; the service URL variable says udp://; a TCP port's entry is as it was
// before udp existed, so no existing container's config hash (and so no install) changes.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { AppRecord } from '../../services/daemon/control-document.js';
import { renderApp, type DesiredApp } from '../../services/daemon/apps/container-spec.js';
import { parseAppSpec } from '../../services/daemon/apps/spec/validate.js';

function desired(yaml: string): DesiredApp {
  const spec = parseAppSpec(yaml);
  const record: AppRecord = {
    spec,
    revision: 1,
    installedAt: '2026-01-01T00:00:00Z',
    updatedAt: '2026-01-01T00:00:00Z',
    run: 'running',
    history: [],
    ports: Object.fromEntries(spec.listeners.map((listener, i) => [listener.name, { hostBind: 15000 + i, public: 35000 + i }])),
    subnet: '10.201.1.0/24',
  };
  return { name: spec.name, record, imageIds: { app: 'sha256:dns' } };
}

const DNS = ['name: dns', 'image: localhost/dns:1', 'listeners:', '  - { name: dns, guest_port: 53, protocol: udp }', '  - { name: dns-tcp, guest_port: 53 }'].join('\n');

test('53/udp and 53/tcp: two published ports, protocol set only on the udp one', () => {
  const app = desired(DNS);
  const [rendered] = renderApp(app, new Map([[app.name, app]])).containers;
  assert.equal(rendered!.container.ports, [
    { guestPort: 53, hostPort: 15000, protocol: 'udp' },
    { guestPort: 53, hostPort: 15001 },
  ]);
  assert.is(rendered!.container.env.PICCOLO_SERVICE_URL_DNS, 'udp://127.0.0.1:53');
  assert.is(rendered!.container.env.PICCOLO_SERVICE_URL_DNS_TCP, 'tcp://127.0.0.1:53');
});

test('a TCP port entry carries no protocol key, so what TCP containers hash is unchanged', () => {
  const app = desired(['name: web', 'image: localhost/web:1', 'listeners:', '  - { name: web, guest_port: 80, protocol: http }'].join('\n'));
  const [rendered] = renderApp(app, new Map([[app.name, app]])).containers;
  assert.equal(Object.keys(rendered!.container.ports[0]!).sort(), ['guestPort', 'hostPort']);
});

test.run();
