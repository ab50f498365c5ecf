// Port and subnet allocation, and naming the holder of a taken port.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import dgram from 'node:dgram';
import net from 'node:net';
import { PortInUseError, PortRangeExhaustedError, SubnetsExhaustedError } from '../../services/daemon/apps/errors.js';
import { allocatePorts, assertPortsFree, findPortHolder, holderOnAnyAddress, hostPortProbe, type PortProbe } from '../../services/daemon/apps/ports.js';
import { allocateSubnet, overlapsAny } from '../../services/daemon/apps/subnets.js';

const small = { hostBind: { name: 'host-bind', first: 100, last: 103 }, public: { name: 'public', first: 200, last: 203 } };
const busy = (...ports: number[]): Pick<PortProbe, 'isFree'> => ({ isFree: async (port) => !ports.includes(port) });

test('lowest free ports, skipping owned ones and ones the machine uses', async () => {
  const ports = await allocatePorts(['web', 'api'], {}, new Set([100, 200]), busy(101), small);
  assert.equal(ports, { web: { hostBind: 102, public: 201 }, api: { hostBind: 103, public: 202 } });
});

test('listeners keep their ports; removed ones give them back', async () => {
  const kept = { web: { hostBind: 103, public: 203 }, old: { hostBind: 100, public: 200 } };
  const ports = await allocatePorts(['web', 'new'], kept, new Set(), busy(), small);
  assert.equal(ports, { web: { hostBind: 103, public: 203 }, new: { hostBind: 100, public: 200 } });
});

test('an exhausted range is a clear error', async () => {
  try {
    await allocatePorts(['a'], {}, new Set([100, 101, 102]), busy(103), small);
    assert.unreachable();
  } catch (err) {
    assert.instance(err, PortRangeExhaustedError);
    assert.match((err as Error).message, /host-bind \(100-103\)/);
  }
});

test('a taken port is refused, naming this very process as its holder', async () => {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  try {
    assert.is(await hostPortProbe.isFree(port), false);
    assert.is(await findPortHolder(port), `pid ${process.pid} (node)`);
    try {
      await assertPortsFree([port], hostPortProbe);
      assert.unreachable();
    } catch (err) {
      assert.instance(err, PortInUseError);
      assert.is((err as Error).message, `port ${port} is in use by pid ${process.pid} (node)`);
    }
  } finally {
    await new Promise((resolve) => server.close(resolve));
  }
  assert.is(await hostPortProbe.isFree(port), true);
  assert.is(await findPortHolder(port), undefined);
});

test('a port some process holds for UDP is not free either (udp listeners take ports from the same pool)', async () => {
  const socket = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '0.0.0.0', resolve));
  const { port } = socket.address();
  try {
    assert.is(await hostPortProbe.isFree(port), false);
    assert.is(await findPortHolder(port), `pid ${process.pid} (node)`);
  } finally {
    await new Promise<void>((resolve) => socket.close(resolve));
  }
  assert.is(await hostPortProbe.isFree(port), true);
});

test('a fixed public port (53 for DNS) is taken as asked, for UDP and TCP both; kept without asking again', async () => {
  const asked: string[] = [];
  const probe = { ...busy(), publicHolder: async (port: number, protocol: 'tcp' | 'udp') => void asked.push(`${port}/${protocol}`) };
  const wanted = [{ name: 'dns', publicPort: 53, protocol: 'udp' as const }, { name: 'dns-tcp', publicPort: 53, protocol: 'tcp' as const }, { name: 'web' }];
  const ports = await allocatePorts(wanted, {}, new Set(), probe, small);
  assert.equal(ports, { dns: { hostBind: 100, public: 53 }, 'dns-tcp': { hostBind: 101, public: 53 }, web: { hostBind: 102, public: 200 } });
  assert.equal(asked, ['53/udp', '53/tcp']);
  asked.length = 0;
  assert.equal(await allocatePorts(wanted, ports, new Set(), probe, small), ports);
  assert.equal(asked, [], 'the proxy holds a kept one for the app itself: not asked again');
  // No longer fixed: a port of the range, not the well-known one.
  assert.equal(await allocatePorts(['dns'], ports, new Set(), probe, small), { dns: { hostBind: 100, public: 200 } });
});

test('a fixed public port another app owns, or something on the machine holds, is refused naming the holder', async () => {
  const dns = [{ name: 'dns', publicPort: 53, protocol: 'udp' as const }];
  try {
    await allocatePorts(dns, {}, new Map([[53, 'app pihole (listener dns)']]), { ...busy(), publicHolder: async () => undefined }, small);
    assert.unreachable();
  } catch (err) {
    assert.instance(err, PortInUseError);
    assert.is((err as Error).message, 'port 53/udp is in use by app pihole (listener dns)');
  }
  // A resolver on one loopback address only (as systemd-resolved's 127.0.0.53) holds the port for the proxy's bind of every address.
  const socket = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.53', resolve));
  const { port } = socket.address();
  try {
    assert.is(await holderOnAnyAddress(port, 'udp'), `pid ${process.pid} (node)`);
    assert.is(await holderOnAnyAddress(port, 'tcp'), undefined, 'TCP is another table');
    await allocatePorts([{ name: 'dns', publicPort: port, protocol: 'udp' }], {}, new Set(), hostPortProbe, small);
    assert.unreachable();
  } catch (err) {
    assert.instance(err, PortInUseError);
    assert.is((err as Error).message, `port ${port}/udp is in use by pid ${process.pid} (node)`);
  } finally {
    await new Promise<void>((resolve) => socket.close(resolve));
  }
  assert.is(await holderOnAnyAddress(port, 'udp'), undefined);
});

test('subnets: lowest /24 of the pool clear of every taken range', () => {
  assert.is(allocateSubnet('10.201.0.0/16', []), '10.201.0.0/24');
  assert.is(allocateSubnet('10.201.0.0/16', ['10.201.0.0/24', '10.201.1.7/24', '10.88.0.0/16']), '10.201.2.0/24');
  assert.is(allocateSubnet('10.201.0.0/16', ['10.201.0.0/23']), '10.201.2.0/24');
  assert.is(allocateSubnet('10.201.0.0/16', ['10.0.0.0/8', '10.202.0.0/16'].slice(1)), '10.201.0.0/24');
  assert.throws(() => allocateSubnet('10.201.0.0/16', ['10.0.0.0/8']), (err: Error) => err instanceof SubnetsExhaustedError);
});

test('subnets: a search from its own starting point wraps around the pool; overlaps are seen', () => {
  assert.is(allocateSubnet('10.201.0.0/16', [], 77), '10.201.77.0/24');
  assert.is(allocateSubnet('10.201.0.0/16', ['10.201.77.0/24'], 77), '10.201.78.0/24');
  assert.is(allocateSubnet('10.201.0.0/16', ['10.201.255.0/24'], 255), '10.201.0.0/24', 'wraps to the start');
  assert.is(allocateSubnet('10.201.0.0/16', ['10.201.128.0/17', '10.201.0.0/24'], 200), '10.201.1.0/24');
  assert.throws(() => allocateSubnet('10.201.0.0/16', ['10.201.0.0/16'], 9), (err: Error) => err instanceof SubnetsExhaustedError);
  assert.ok(overlapsAny('10.201.3.0/24', ['10.88.0.0/16', '10.201.0.0/22']));
  assert.not.ok(overlapsAny('10.201.4.0/24', ['10.88.0.0/16', '10.201.0.0/22']));
  assert.ok(overlapsAny('10.201.4.0/24', ['10.201.4.1/32']), 'a host address inside it');
});

test.run();
