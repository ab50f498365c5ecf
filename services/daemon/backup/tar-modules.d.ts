// The parts of tar-stream 2.x and tar-fs 2.x the backup uses (neither ships its own types, and
// no @types package is installed). Kept to what archive-contents.ts calls.
declare module 'tar-stream' {
  import type { Readable, Writable } from 'node:stream';

  export interface Headers {
    name: string;
    size?: number;
    mode?: number;
    mtime?: Date;
    type?: 'file' | 'link' | 'symlink' | 'directory' | 'block-device' | 'character-device' | 'fifo' | 'contiguous-file' | 'pax-header' | 'pax-global-header' | 'gnu-long-link-path' | 'gnu-long-path' | null;
    linkname?: string | null;
    uid?: number;
    gid?: number;
  }

  export interface Pack extends Readable {
    entry(header: Headers, buffer: string | Buffer, callback?: (err?: Error | null) => void): Writable;
    entry(header: Headers, callback?: (err?: Error | null) => void): Writable;
    finalize(): void;
  }

  export interface Extract extends Writable {
    on(event: 'entry', listener: (header: Headers, stream: Readable, next: (err?: unknown) => void) => void): this;
    on(event: string | symbol, listener: (...args: any[]) => void): this;
  }

  export function pack(): Pack;
  export function extract(): Extract;
}

declare module 'tar-fs' {
  import type { Headers, Pack } from 'tar-stream';

  export interface PackOptions {
    /** Add to this pack instead of a new one. */
    pack?: Pack;
    /** false: leave the pack open for more entries (default true). */
    finalize?: boolean;
    /** Called once every entry of the folder has been added. */
    finish?: (pack: Pack) => void;
    map?: (header: Headers) => Headers;
    /** 0 keeps each file's own mode bits. */
    umask?: number;
    /** false: skip what tar cannot hold (fifos, devices) instead of failing. */
    strict?: boolean;
    sort?: boolean;
    /** true: the path (cwd joined with the entry's) and what is below it are left out. */
    ignore?: (file: string) => boolean;
  }

  export function pack(cwd: string, options?: PackOptions): Pack;
}
