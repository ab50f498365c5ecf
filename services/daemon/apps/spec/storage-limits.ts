// A persistent volume's size_limit is fixed once the volume is made: it is its own ext4 file
// system of that size (volumes/size-limited.ts). Growing it online needs CAP_SYS_RESOURCE, which
// the daemon does not hold, and offline the app would have to stop mid-update; shrinking could
// lose data. So an update (or revert) that changes, adds or removes the limit of a volume the app
// already has is refused up front, naming the field, before any job starts.
import { BadRequestError } from '../../../common/errors.js';
import type { DeepReadonly } from '../../store/store.js';
import type { AppSpec } from './types.js';

export function limitChangeProblems(installed: DeepReadonly<AppSpec>, next: DeepReadonly<AppSpec>): string[] {
  const problems: string[] = [];
  for (const [name, now] of Object.entries(installed.storage.persistent)) {
    const then = next.storage.persistent[name];
    if (!then || then.size_limit_bytes === now.size_limit_bytes) continue;
    const field = `storage.persistent.${name}.size_limit`;
    if (now.size_limit_bytes === undefined) problems.push(`${field}: cannot be added to the volume ${name}, which exists without a limit (a limit is set when a volume is first made)`);
    else if (then.size_limit_bytes === undefined) problems.push(`${field}: cannot be removed: the volume ${name} is its own file system of ${now.size_limit}; keep size_limit: ${now.size_limit}`);
    else problems.push(`${field}: cannot change from ${now.size_limit} to ${then.size_limit}: the volume ${name} is its own file system of ${now.size_limit}, fixed when it was made`);
  }
  return problems;
}

/** Throws the 400 listing each changed limit. */
export function assertLimitsKept(installed: DeepReadonly<AppSpec>, next: DeepReadonly<AppSpec>): void {
  const problems = limitChangeProblems(installed, next);
  if (problems.length) throw new BadRequestError('size limits are fixed once a volume is made', problems);
}
