// Errors of the app runtime. Each one says what is wrong in words a person can act on.
import { BadRequestError, ConflictError, NotFoundError, PiccoloError } from '../../common/errors.js';

export class AppNotFoundError extends NotFoundError {
  constructor(readonly app: string) {
    super(`no app named ${app} is installed`);
  }
}

export class AppExistsError extends ConflictError {
  constructor(readonly app: string) {
    super(`an app named ${app} is already installed`);
  }
}

/** Another job is already working on the app; one job per app at a time. */
export class AppBusyError extends ConflictError {
  constructor(readonly app: string, readonly jobId: string) {
    super(`app ${app} is busy with job ${jobId}; try again when it has finished`, { app, jobId });
  }
}

export class DependencyError extends BadRequestError {
  constructor(message: string, details?: unknown) {
    super(message, details);
  }
}

/** depends_on goes round in a circle, so there is no order in which the apps can start. */
export class DependencyCycleError extends BadRequestError {
  constructor(readonly cycle: string[]) {
    super(`depends_on forms a cycle: ${cycle.join(' → ')}`, { cycle });
  }
}

export class RevisionNotFoundError extends NotFoundError {
  constructor(app: string, revision: number, available: number[]) {
    super(`app ${app} has no revision ${revision} in its history (available: ${available.join(', ') || 'none'})`);
  }
}

export class PortRangeExhaustedError extends PiccoloError {
  constructor(range: string) {
    super(507, 'ports_exhausted', `no free port left in the ${range} range`);
  }
}

/** A port the app owns (or asks for: public_port) is held by another process or app. */
export class PortInUseError extends ConflictError {
  constructor(
    readonly port: number,
    readonly holder: string | undefined,
    /** Said when only one transport is meant (a fixed public port: 53/udp). */
    readonly protocol?: 'tcp' | 'udp',
  ) {
    super(`port ${port}${protocol ? `/${protocol}` : ''} is in use by ${holder ?? 'another process (could not tell which)'}`, { port, holder, ...(protocol && { protocol }) });
  }
}

export class SubnetsExhaustedError extends PiccoloError {
  constructor(pool: string) {
    super(507, 'subnets_exhausted', `no free /24 network left in ${pool}`);
  }
}

/** The image is not in the engine's store and could not be pulled. */
export class ImageUnavailableError extends PiccoloError {
  constructor(readonly image: string, reason: string) {
    super(424, 'image_unavailable', `image ${image} is not available: ${reason}`, { image });
  }
}

/** The engine refused or failed an operation; the message carries the engine's own words. */
export class EngineError extends PiccoloError {
  constructor(operation: string, cause: unknown) {
    super(502, 'engine_error', `container engine: ${operation} failed: ${engineMessage(cause)}`);
    this.cause = cause;
  }
}

function engineMessage(cause: unknown): string {
  const json = (cause as { json?: { message?: string } }).json;
  return json?.message ?? (cause instanceof Error ? cause.message : String(cause));
}

/** A service needs a permission (host network, devices, ...) the app was not granted: refused, never silently dropped. */
export class PermissionNotGrantedError extends PiccoloError {
  constructor(readonly app: string, readonly service: string, readonly permission: string, what: string) {
    super(403, 'permission_required', `app ${app}: service ${service} needs ${what} (permission ${permission}), which was not granted`, { app, service, permission });
  }
}

/** A service did not become healthy, or did not complete, in time: names the service and why. */
export class ServiceWaitError extends PiccoloError {
  constructor(readonly app: string, readonly service: string, reason: string) {
    super(504, 'service_not_ready', `app ${app}: service ${service} ${reason}`, { app, service });
  }
}

/** Not enough free space for an image before its pull (image-space.ts): 507, naming needed and free. */
export class ImageSpaceError extends PiccoloError {
  constructor(
    readonly images: readonly string[],
    readonly space: { neededBytes: number; freeBytes: number; path: string; compressedBytes: number; reserveBytes: number },
  ) {
    super(
      507,
      'insufficient_storage',
      `not enough free space to pull ${images.join(', ')}: needs about ${formatBytes(space.neededBytes)} on ${space.path} (layers of ${formatBytes(space.compressedBytes)} as downloaded, unpacked, and ${formatBytes(space.reserveBytes)} kept free for the device), ${formatBytes(space.freeBytes)} free; nothing was pulled`,
      { images, ...space },
    );
  }
}

/** 1.2 GB, 340 MB, 12 kB: what a person reads (powers of 1000, as disks are sold). */
export function formatBytes(bytes: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return `${unit === 0 ? value : value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}
