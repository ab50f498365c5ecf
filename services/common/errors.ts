// Typed errors carry their HTTP status; http.ts maps them to responses in one place.
export class PiccoloError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

export class BadRequestError extends PiccoloError {
  constructor(message: string, details?: unknown) {
    super(400, 'bad_request', message, details);
  }
}

export class NotFoundError extends PiccoloError {
  constructor(message = 'not found') {
    super(404, 'not_found', message);
  }
}

export class MethodNotAllowedError extends PiccoloError {
  constructor(readonly allowed: string[]) {
    super(405, 'method_not_allowed', `method not allowed; use ${allowed.join(', ')}`);
  }
}

export class PayloadTooLargeError extends PiccoloError {
  constructor(limitBytes: number) {
    super(413, 'payload_too_large', `request body exceeds ${limitBytes} bytes`);
  }
}

export class UnsupportedMediaTypeError extends PiccoloError {
  constructor(expected: string) {
    super(415, 'unsupported_media_type', `content-type must be ${expected}`);
  }
}

export class UnauthorizedError extends PiccoloError {
  constructor(message = 'authentication required') {
    super(401, 'unauthorized', message);
  }
}

export class ForbiddenError extends PiccoloError {
  constructor(message: string) {
    super(403, 'forbidden', message);
  }
}

export class ConflictError extends PiccoloError {
  constructor(message: string, details?: unknown) {
    super(409, 'conflict', message, details);
  }
}

/** The device is locked: the encrypted state is not available until someone unlocks it. */
export class LockedError extends PiccoloError {
  constructor(message = 'the device is locked; unlock it with the admin password') {
    super(423, 'locked', message);
  }
}

export class TooManyRequestsError extends PiccoloError {
  constructor(readonly retryAfterSeconds: number) {
    super(429, 'too_many_requests', `too many failed attempts; retry in ${retryAfterSeconds} s`);
  }
}

/** Something the service depends on failed (a volume, the TPM, the store): a 503, not a 500. */
export class UnavailableError extends PiccoloError {
  constructor(message: string) {
    super(503, 'unavailable', message);
  }
}

/**
 * A write failed because the state disk has no room left (ENOSPC, EDQUOT). 507 Insufficient
 * Storage with code disk_full, so a client can tell it from a dependency being down (503) and
 * tell the person what to do. Nothing latches: the same write succeeds once space is freed.
 */
export class DiskFullError extends PiccoloError {
  constructor(
    readonly freeBytes: number | undefined,
    what = 'the change was not saved',
  ) {
    const free = freeBytes === undefined ? '' : `: ${freeBytes} bytes free`;
    super(507, 'disk_full', `state disk full${free}; ${what}. Free space (remove an app or its data, or unused images) and try again; writes resume by themselves`, { freeBytes: freeBytes ?? null });
  }
}

/** A write refused for lack of space, directly or as the cause of a wrapping error. */
export function isNoSpaceError(err: unknown): boolean {
  for (let e = err, depth = 0; typeof e === 'object' && e !== null && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    if (e instanceof DiskFullError) return true;
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOSPC' || code === 'EDQUOT') return true;
  }
  return false;
}

/** A configuration value is missing or malformed: the service must not start. */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration: ${problems.join('; ')}`);
    this.name = 'ConfigError';
  }
}

/** A write that only the leader node may make; `leader` says where to make it, when known. */
export class NotLeaderError extends PiccoloError {
  constructor(readonly leader: string | undefined) {
    super(409, 'not_leader', `this node is not the leader; manage the device at ${leader ?? 'the leader node'}`, { leader: leader ?? null });
  }
}
