// A state as a word with a colour; the word alone carries the meaning (colour is only a cue).
const TONES: Record<string, string> = {
  updated: 'ok', 'up-to-date': 'ok',
  running: 'ok', healthy: 'ok', ok: 'ok', succeeded: 'ok', connected: 'ok', valid: 'ok', unlocked: 'ok', ready: 'ok', active: 'ok',
  starting: 'busy', installing: 'busy', updating: 'busy', stopping: 'busy', removing: 'busy', pending: 'busy', connecting: 'busy', renewing: 'busy',
  stopped: 'idle', disabled: 'idle', unknown: 'idle', idle: 'idle', off: 'idle',
  interrupted: 'warn',
  degraded: 'warn', unhealthy: 'warn', denied: 'warn', expiring: 'warn', locked: 'warn', backoff: 'warn',
  'timed-out': 'bad',
  failed: 'bad', error: 'bad', down: 'bad', fatal: 'bad', expired: 'bad',
};

export function Badge({ state, label }: { state: string; label?: string }) {
  return <span class={`badge ${TONES[state] ?? 'idle'}`}>{label ?? state}</span>;
}
