// Our tunnel in the bench: placeholder until services/relay and the tunnel client land.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { REPO_ROOT } from '../image/bundle.js';
import { goBinary, type BenchContext, type Peer, type RunningPeer } from './tunnel-peers.js';

export interface SoakResult {
  kills: number;
  p50ReconnectS: number;
  p90ReconnectS: number;
  maxReconnectS: number;
  p50RelayRestartS: number;
  fdsBefore: number;
  fdsAfter: number;
  leakedFds: number;
  leakedStreams: number;
}

export const oursPeer: Peer = {
  name: 'ours',
  describe: 'our tunnel client (services/tunnel) to our relay (services/relay), wss on loopback',
  unavailable: () => (existsSync(path.join(REPO_ROOT, 'services/relay/relay.ts')) ? undefined : 'services/relay/relay.ts does not exist yet'),
  start: async () => {
    throw new Error('not yet');
  },
};

const NEXUS_MODULE = 'github.com/AtDexters-Lab/nexus-proxy/cmd/nexus-proxy-server@v0.3.14';
let nexus: { file?: string; reason?: string } | undefined;
export const nexusPeer: Peer = {
  name: 'ours-nexus',
  describe: 'our tunnel client to the real Nexus proxy server',
  unavailable(ctx) {
    nexus ??= goBinary('nexus-proxy-server', NEXUS_MODULE, ctx.log);
    return nexus.reason;
  },
  start: async () => {
    throw new Error('not yet');
  },
};

export async function reconnectSoak(_peer: RunningPeer, _kills: number, _options: { ctx: BenchContext; echoConnections: () => Promise<number>; log: (line: string) => void }): Promise<SoakResult | undefined> {
  return undefined;
}
