// The Node flags each service runs with: in the image's units (overlays/.../piccolo-*.service
// ExecStart, held to this list by test/integration/units.test.ts), under `make run` and in the tests
// and benches that start the bundles (test/support/processes.ts), so what is measured is what ships.
// Measured with bench/footprint*.ts (bench/results/footprint-*.md):
// - no --enable-source-maps: Node then reads and parses each bundle's whole .map at start and keeps
//   it (sources included): +24 MiB RSS in the daemon, +11 in the proxy, +4-5 in health and tunnel.
//   The services never log a stack (the logger writes an error's name and message), so it only
//   mapped the stack of a crash, which the shipped .map next to the bundle still maps offline.
// - the daemon: --max-semi-space-size=1 (MiB), a bounded young generation. Its start (YAML, JSON
//   Schema, the portal's assets) grows the default one to 16 MiB semi-spaces that stay resident:
//   -20 MiB idle RSS. The proxy and tunnel keep the default (no idle gain measured, and their
//   throughput is what their benches hold); health gains nothing either.
// - the proxy keeps incremental marking, though it slows passthrough after HTTP/TLS load. Each
//   socket read is a new 64 KiB buffer; once the proxy had carried that load, V8 started incremental
//   marking after nearly every scavenge those buffers trigger: ~60 full collections per 3 s of
//   passthrough (~230 ms of pauses plus the write barriers while marking), against 6 on a fresh
//   proxy and none in a bare Node relay (ad-hoc trials, --trace-gc): ~0.7x the relay after load,
//   ~1x fresh. --no-incremental-marking removed them (0-1 per 3 s, the relay's speed after load),
//   but without it the memory reducer never runs either: the proxy's first boot (its CA) then stays
//   at 64.8-65.8 MiB idle instead of falling to 57.6 (goal 60), and a later boot at 51.6, not 49.7-50.6.
//   Neither --max-semi-space-size, --no-allocation-site-pretenuring, --no-memory-reducer nor the
//   incremental-marking triggers changed the count.
import type { ServiceName } from './bundle.js';

export const NODE_FLAGS: Record<ServiceName, readonly string[]> = {
  daemon: ['--max-semi-space-size=1'],
  proxy: [],
  tunnel: [],
  health: [],
};

/**
 * What a service's unit sets with Environment=, for what Node has no flag for; the tests and benches
 * that start the bundles set it too.
 * - the proxy: GLIBC_TUNABLES=glibc.malloc.trim_threshold=64 MiB. Each socket read is a new 64 KiB
 *   buffer that V8 frees in a batch at its next scavenge, one per ~32 MB read. With glibc's default
 *   (dynamic) trim threshold the proxy gave that batch back to the kernel each time and faulted it in
 *   again: ~200k page faults per GB relayed, against ~5-10k for a bare Node relay (perf: page faults,
 *   memcg charging and page clearing beside the copies). A threshold above the batch keeps it: 0-10k
 *   faults per GB and the CPU per GB of a bare relay (SNI passthrough, P5 in bench/proxy.ts).
 */
export const SERVICE_ENVIRONMENT: Record<ServiceName, Readonly<Record<string, string>>> = {
  daemon: {},
  proxy: { GLIBC_TUNABLES: 'glibc.malloc.trim_threshold=67108864' },
  tunnel: {},
  health: {},
};

/** The command line of a service, as its unit's ExecStart has it (node and bundle paths given). */
export function serviceCommand(service: ServiceName, node: string, bundle: string): string[] {
  return [node, ...NODE_FLAGS[service], bundle];
}
