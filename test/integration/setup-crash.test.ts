// A crash in the middle of setup leaves nothing half-made: after a restart the device is either
// fully set up or unclaimed, and a retry of setup works.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { TEST_BUNDLE_DIR, bundleServices } from '../../image/bundle.js';
import { ServiceProcess, startTestDaemon, removeTestDir } from '../support/processes.js';

const dir = mkdtempSync(path.join(tmpdir(), 'piccolo-setup-crash-'));
const running: ServiceProcess[] = [];

async function daemonIn(stateDir: string): Promise<{ proc: ServiceProcess; api: string }> {
  const daemon = await startTestDaemon(stateDir);
  running.push(daemon.proc);
  return daemon;
}

async function post(api: string, route: string, body: unknown): Promise<{ status: number; body: any }> {
  const res = await fetch(api + route, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: res.status, body: await res.json() };
}

async function state(api: string): Promise<string> {
  return (await (await fetch(api + '/api/v1/setup/status')).json()).state;
}

/** Claims the device and sends the setup request; `sent` resolves with its answer (or undefined if the daemon died). */
async function setUp(api: string, stateDir: string): Promise<{ sent: Promise<{ status: number } | undefined> }> {
  const claimCode = readFileSync(path.join(stateDir, 'claim-code'), 'utf8').trim();
  const claim = await post(api, '/api/v1/setup/claim', { claimCode });
  assert.is(claim.status, 200);
  return { sent: post(api, '/api/v1/setup', { setupToken: claim.body.setupToken, password: 'Crash-Proof-Setup-1', recoveryKeySaved: true }).catch(() => undefined) };
}

test.before(() => bundleServices({ outDir: TEST_BUNDLE_DIR, testHooks: true }).then(() => undefined));

test.after(async () => {
  await Promise.all(running.map((p) => p.kill('SIGKILL')));
  removeTestDir(dir);
});

for (const killAfterMs of [0, 100, 250, 500, 800]) {
  test(`SIGKILL ${killAfterMs} ms into setup: after a restart, set up or cleanly unclaimed, and a retry works`, async () => {
    const stateDir = path.join(dir, `state-${killAfterMs}`);
    const first = await daemonIn(stateDir);
    const { sent } = await setUp(first.api, stateDir);
    await new Promise((r) => setTimeout(r, killAfterMs));
    await first.proc.kill('SIGKILL');
    const answered = await sent;

    const second = await daemonIn(stateDir);
    const after = await state(second.api);
    console.log(`  killed ${killAfterMs} ms into setup (${answered ? 'after' : 'before'} it answered): ${after} after restart`);
    assert.ok(['unclaimed', 'unlocked', 'locked'].includes(after), `state after the crash: ${after}`);
    if (after === 'unclaimed') {
      const retry = await (await setUp(second.api, stateDir)).sent;
      assert.is(retry?.status, 201);
      assert.is(await state(second.api), 'unlocked');
    } else {
      // Completed before the kill; without a TPM it waits for the password.
      const unlock = await post(second.api, '/api/v1/crypto/unlock', { password: 'Crash-Proof-Setup-1' });
      assert.ok(after === 'unlocked' || unlock.status === 200, `unlock after a completed setup: ${unlock.status}`);
    }
    await second.proc.kill('SIGTERM');
  });
}

test.run();
