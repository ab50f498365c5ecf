// Remote and auth changes on the leader bump its control store's rev and reach its subscribers as
// commit events; a simulated follower (ControlFollower long-polling the leader's real store)
// sees each new rev and ends up with the same content, and its own subscribers follow.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createLogger } from '../../services/common/logger.js';
import { SessionStore } from '../../services/daemon/auth/sessions.js';
import { ControlFollower, storeFeed } from '../../services/daemon/cluster/control-follower.js';
import { endSessionsOnPasswordChange, recordPasswordChange } from '../../services/daemon/cluster/password-change.js';
import { RemoteAccess } from '../../services/daemon/remote/remote-access.js';
import { CONTROL_MIGRATIONS, CONTROL_SCHEMA_VERSION, initialControlDocument, type ControlDocument } from '../../services/daemon/control-document.js';
import { ControlStore, type CommitEvent } from '../../services/daemon/store/store.js';
import { removeTestDir, waitFor } from '../support/processes.js';

const dir = mkdtempSync(path.join(tmpdir(), 'piccolo-cluster-follower-'));
const logger = createLogger({ service: 'test', write: () => {} });
const openStore = (name: string) =>
  ControlStore.open<ControlDocument>({ dir: path.join(dir, name), logger, schemaVersion: CONTROL_SCHEMA_VERSION, migrations: CONTROL_MIGRATIONS, initial: initialControlDocument });

let leader: ControlStore<ControlDocument>;
let replica: ControlStore<ControlDocument>;
let follower: ControlFollower;
const leaderEvents: CommitEvent<ControlDocument>[] = [];
const replicaEvents: CommitEvent<ControlDocument>[] = [];
const followerSessions = new SessionStore({ now: Date.now });

/** Each node's remote access manager, following its own store (no certificates, no proxy here). */
function remoteAccessOn(store: ControlStore<ControlDocument>, name: string): RemoteAccess {
  const vault = { state: 'unlocked' as const, controlStore: store, bootstrapDir: path.join(dir, `${name}-bootstrap`), assertUnlocked: () => {} };
  return new RemoteAccess({ vault, logger, now: Date.now, publishRoutes: () => {} });
}

let leaderRemote: RemoteAccess;
let followerRemote: RemoteAccess;
const caughtUp = () => waitFor(() => (follower.rev === leader.rev ? true : undefined), 5_000, `follower at rev ${leader.rev}`);
const shared = (doc: ControlStore<ControlDocument>['data']) => ({ apps: doc.apps, remote: doc.remote, auth: doc.auth });

test.before(async () => {
  leader = await openStore('leader');
  replica = await openStore('follower');
  leader.subscribe((event) => void leaderEvents.push(event));
  replica.subscribe((event) => void replicaEvents.push(event));
  endSessionsOnPasswordChange(replica, followerSessions);
  follower = new ControlFollower({ feed: storeFeed(leader), replica, logger });
  await follower.start();
  leaderRemote = remoteAccessOn(leader, 'leader');
  followerRemote = remoteAccessOn(replica, 'follower');
  await leaderRemote.start();
  await followerRemote.start();
});

test.after(async () => {
  await follower.stop();
  await leaderRemote.stop();
  await followerRemote.stop();
  await leader.close();
  await replica.close();
  removeTestDir(dir);
});

test('the follower starts from the leader rev and content', () => {
  assert.is(follower.rev, leader.rev);
  assert.equal(shared(replica.data), shared(leader.data));
});

test('a password change bumps the rev, is a commit event, and ends the follower sessions', async () => {
  const before = leader.rev;
  const session = followerSessions.create('admin');
  const rev = await recordPasswordChange(leader, Date.parse('2026-12-01T09:00:00Z'));
  assert.is(rev, before + 1);
  assert.is(leader.rev, rev);
  const event = leaderEvents.at(-1)!;
  assert.is(event.rev, rev);
  assert.is(event.data.auth.passwordChangedAt, '2026-12-01T09:00:00.000Z');
  await caughtUp();
  assert.equal(replica.data.auth, leader.data.auth);
  assert.is(replicaEvents.at(-1)!.data.auth.passwordChangedAt, '2026-12-01T09:00:00.000Z', 'the follower store subscribers got the change too');
  assert.is(followerSessions.get(session.id), undefined, 'a session from before the change has ended');
});

test('a remote change bumps the rev, is a commit event, and both nodes remote managers follow their stores; sessions stay', async () => {
  const before = leader.rev;
  const session = followerSessions.create('admin');
  await leaderRemote.configure({ relayUrl: 'wss://Relay.example.com:8443/connect', deviceSecret: 'a-device-secret-of-the-leader', portalHostname: 'Portal.example.com', appDomain: 'apps.example.com' });
  const settings = { relayUrl: 'wss://relay.example.com:8443/connect', portalHostname: 'portal.example.com', appDomain: 'apps.example.com', enabled: true };
  assert.is(leader.rev, before + 1);
  assert.equal(leaderEvents.at(-1)!.data.remote, settings);
  assert.is(leaderRemote.status().relayUrl, settings.relayUrl);
  assert.is(leaderRemote.current().enabled, true);
  await caughtUp();
  assert.equal(replica.data.remote, settings);
  assert.equal(replicaEvents.at(-1)!.data.remote, settings);
  const seen = followerRemote.status();
  assert.equal([seen.configured, seen.relayUrl, seen.portalHostname, seen.appDomain], [true, settings.relayUrl, settings.portalHostname, settings.appDomain]);
  // The device secret lives in the leader's encrypted bootstrap volume, never in the store.
  assert.is(seen.deviceSecretSet, false);
  assert.not.ok(JSON.stringify(replica.data).includes('a-device-secret-of-the-leader'));
  assert.ok(followerSessions.get(session.id), 'no password change, no sign-out');
});

test('changes in a burst: the follower ends at the last rev with the last content', async () => {
  for (const enabled of [false, true, false]) await leader.commit((draft) => void (draft.remote!.enabled = enabled));
  await caughtUp();
  assert.equal(shared(replica.data), shared(leader.data));
  assert.is(replica.data.remote!.enabled, false);
});

test('only the shared sections are copied: jobs and the device record stay the follower own', async () => {
  const ownCreatedAt = replica.data.device.createdAt;
  await leader.commit((draft) => {
    draft.device.createdAt = '2020-01-01T00:00:00.000Z';
    draft.jobs.push({ id: 'j1', app: 'web', kind: 'start', status: 'succeeded', progress: { done: 1, total: 1 }, createdAt: '2026-12-01T00:00:00Z', updatedAt: '2026-12-01T00:00:00Z' });
  });
  await caughtUp();
  assert.is(replica.data.device.createdAt, ownCreatedAt);
  assert.equal(replica.data.jobs, []);
});

test('stopped, the follower copies nothing more', async () => {
  await follower.stop();
  const at = follower.rev;
  await leader.commit((draft) => void (draft.remote = null));
  await new Promise((resolve) => setTimeout(resolve, 100));
  assert.is(follower.rev, at);
  assert.ok(replica.data.remote);
});

test.run();
