// Sessions end on every node when the admin password changes. The node that changed it records
// the change in the control store's auth section (a commit: rev bumps, subscribers hear of it),
// and each node ends its own sessions when its store says so; on a follower that is once
// ControlFollower has copied the section over. The record is part of the change itself:
// Vault.changePassword runs it after the new key ring is written in full and before that replaces
// the old one, so a record refused (a full disk) leaves the old password working and the answer
// says so (507 disk_full), never a change half made.
import type { SessionStore } from '../auth/sessions.js';
import type { ControlDocument } from '../control-document.js';
import type { ControlStore } from '../store/store.js';

export function recordPasswordChange(store: ControlStore<ControlDocument>, at: number): Promise<number> {
  return store.commit((draft) => void (draft.auth.passwordChangedAt = new Date(at).toISOString()));
}

/** Returns the unsubscribe function. */
export function endSessionsOnPasswordChange(store: ControlStore<ControlDocument>, sessions: Pick<SessionStore, 'destroyAll'>): () => void {
  let seen = store.data.auth.passwordChangedAt;
  return store.subscribe(({ data }) => {
    if (data.auth.passwordChangedAt === seen) return;
    seen = data.auth.passwordChangedAt;
    sessions.destroyAll();
  });
}
