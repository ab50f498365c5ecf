// An image pull's progress, summed over its layers from the engine's JSON-lines stream. Podman's
// Docker-compatible stream (4.3) says "Pulling fs layer" when it starts a blob (layers and the
// config alike), "Downloading" with {current, total} about once a second while it copies one,
// and "Download complete" (or "Already exists") at its end; a pull that fails says so in an
// `error` line of an HTTP 200 answer, which is why every line is checked.

export interface PullProgress {
  image: string;
  currentBytes: number;
  /** Grows as layers report their size: a blob's size is known from its first "Downloading". */
  totalBytes: number;
  layersDone: number;
  layersTotal: number;
  done: boolean;
}

/** One line of the engine's pull stream, as dockerode's followProgress hands it over. */
export interface PullEvent {
  status?: string;
  id?: string;
  progressDetail?: { current?: number; total?: number };
  error?: string;
  errorDetail?: { message?: string };
}

interface Layer {
  current: number;
  total: number;
  done: boolean;
}

export class PullTracker {
  private readonly layers = new Map<string, Layer>();
  /** The engine's error line, if the pull failed. */
  error: string | undefined;
  private finished = false;

  constructor(private readonly image: string) {}

  /** Takes one stream line. */
  add(event: PullEvent): void {
    if (event.error || event.errorDetail?.message) {
      this.error = event.errorDetail?.message ?? event.error;
      return;
    }
    if (!event.id) return;
    const layer = this.layers.get(event.id) ?? { current: 0, total: 0, done: false };
    this.layers.set(event.id, layer);
    switch (event.status) {
      case 'Downloading':
        layer.current = event.progressDetail?.current ?? layer.current;
        layer.total = event.progressDetail?.total ?? layer.total;
        break;
      case 'Download complete':
      case 'Pull complete':
      case 'Already exists':
        layer.done = true;
        layer.current = layer.total;
        break;
    }
  }

  finish(): void {
    this.finished = true;
  }

  get progress(): PullProgress {
    let currentBytes = 0;
    let totalBytes = 0;
    let layersDone = 0;
    for (const layer of this.layers.values()) {
      currentBytes += layer.current;
      totalBytes += layer.total;
      if (layer.done) layersDone++;
    }
    return { image: this.image, currentBytes, totalBytes, layersDone, layersTotal: this.layers.size, done: this.finished };
  }
}

/**
 * Calls `fn` at most once per `intervalMs`; a call inside the interval is delivered at its end
 * with the latest value, so the last state is never lost. flush() delivers a pending one now.
 */
export function throttled<T>(fn: (value: T) => void, intervalMs: number, now: () => number = Date.now): { push(value: T): void; flush(): void } {
  let last = -Infinity;
  let pending: { value: T } | undefined;
  let timer: NodeJS.Timeout | undefined;
  const deliver = () => {
    clearTimeout(timer);
    timer = undefined;
    if (!pending) return;
    const { value } = pending;
    pending = undefined;
    last = now();
    fn(value);
  };
  return {
    push(value) {
      pending = { value };
      const wait = last + intervalMs - now();
      if (wait <= 0) deliver();
      else timer ??= setTimeout(deliver, wait);
    },
    flush: deliver,
  };
}
