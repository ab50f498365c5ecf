// Work that must not overlap (a commit, a key-ring write, a TPM session, a volume mount) runs one
// piece at a time, in the order it was asked for. A failure goes to whoever asked and does not
// stop the queue: the next piece runs as if nothing happened.

const settle = () => {};

export class SerialQueue {
  /** The last piece queued, settled either way: it never rejects. */
  private tail: Promise<void> = Promise.resolve();
  private waiting = 0;

  /** Runs fn once everything queued before it has finished; resolves or rejects as fn does. */
  run<T>(fn: () => T | Promise<T>): Promise<T> {
    this.waiting++;
    const result = this.tail.then(fn);
    this.tail = result.then(settle, settle).finally(() => void this.waiting--);
    return result;
  }

  /** Resolves once everything queued so far has finished (never rejects). */
  idle(): Promise<void> {
    return this.tail;
  }

  /** Pieces queued or running. */
  get size(): number {
    return this.waiting;
  }
}

/** A SerialQueue per key (e.g. a volume's name): work on different keys runs side by side. */
export class KeyedSerialQueue {
  private readonly queues = new Map<string, SerialQueue>();

  run<T>(key: string, fn: () => T | Promise<T>): Promise<T> {
    let queue = this.queues.get(key);
    if (!queue) this.queues.set(key, (queue = new SerialQueue()));
    const result = queue.run(fn);
    // Forgotten once idle, so keys that come and go (apps) do not pile up.
    void queue.idle().then(() => {
      if (queue!.size === 0 && this.queues.get(key) === queue) this.queues.delete(key);
    });
    return result;
  }

  /** Keys with work queued or running. */
  get keys(): string[] {
    return [...this.queues.keys()];
  }
}
