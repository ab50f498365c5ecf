// Reads the health service's /health/detail (services/health/routes.ts) for the dashboard. The
// health service answers 503 with the same body when the device is not ready, so both are
// answers; only no answer at all (not running, hung, garbage) makes reachable false, with a
// reason a person can act on. It never throws: the dashboard must show the rest regardless.
import http from 'node:http';
import type { HealthComponentView, HealthView } from './types.js';

export interface HealthClientOptions {
  /** The health service's base URL, e.g. http://127.0.0.1:4040. */
  url: string;
  /** The service is local: anything slower than this is as good as down. */
  timeoutMs?: number;
}

interface DetailBody {
  ready?: unknown;
  reasons?: unknown;
  notes?: unknown;
  components?: { component?: unknown; state?: unknown; reason?: unknown }[];
}

const STATES = new Set(['ok', 'degraded', 'down', 'fatal']);

export async function readHealth({ url, timeoutMs = 1500 }: HealthClientOptions): Promise<HealthView> {
  const target = new URL('/health/detail', url);
  try {
    const { status, body } = await getText(target, timeoutMs);
    if (status !== 200 && status !== 503) throw new Error(`it answered HTTP ${status}`);
    return healthFromDetail(JSON.parse(body) as DetailBody);
  } catch (err) {
    const why = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    return {
      reachable: false,
      ready: false,
      components: [],
      reasons: [`the health service at ${target.origin} did not answer (${why}); it may still be starting, otherwise restart the device`],
      notes: [],
    };
  }
}

/** Pure: the health service's body, in the portal's words (component → name, state → status). */
export function healthFromDetail(body: DetailBody): HealthView {
  if (typeof body !== 'object' || body === null || !Array.isArray(body.components)) throw new Error('not a health detail document');
  const components = body.components.map((c): HealthComponentView => {
    const view: HealthComponentView = { name: String(c.component), status: STATES.has(c.state as string) ? (c.state as HealthComponentView['status']) : 'down' };
    if (typeof c.reason === 'string' && c.reason) view.reason = c.reason;
    return view;
  });
  return { reachable: true, ready: body.ready === true, components, reasons: strings(body.reasons), notes: strings(body.notes) };
}

function strings(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];
}

function getText(url: URL, timeoutMs: number): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    // A hard deadline for the whole answer, not an idle timeout: a trickling peer is no better.
    const timer = setTimeout(() => req.destroy(Object.assign(new Error(`no answer within ${timeoutMs} ms`), { code: 'timeout' })), timeoutMs);
    const fail = (err: Error) => {
      clearTimeout(timer);
      reject(err);
    };
    const req = http.get(url, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        // A health document is a few KiB; anything huge is not the health service.
        if (size > 1 << 20) return req.destroy(new Error('answer too large'));
        chunks.push(chunk);
      });
      res.on('end', () => {
        clearTimeout(timer);
        resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') });
      });
      res.on('error', fail);
    });
    req.on('error', fail);
  });
}
