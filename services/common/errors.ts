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

/** A configuration value is missing or malformed: the service must not start. */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration: ${problems.join('; ')}`);
    this.name = 'ConfigError';
  }
}
