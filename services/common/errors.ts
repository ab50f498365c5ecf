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
