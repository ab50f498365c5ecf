// The web terminal end to end: the real daemon bundle, real Podman, a busybox app. A WebSocket
// gated by the session, the Origin and the CSRF subprotocol runs a shell in the app's container;
// resize reaches the TTY; the socket closes on exit, idle, logout and lock, and the audit log
// says who opened and closed which terminal.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { WebSocket } from 'ws';
import { TEST_BUNDLE_DIR, bundleServices } from '../../image/bundle.js';
import { ApiSession } from '../support/api-session.js';
import { setUpWithApps, TEST_PASSWORD } from '../support/portal.js';
import { startTestDaemon, removeTestDir, waitFor, type ServiceProcess } from '../support/processes.js';
import { startPodman, type TestPodman } from '../support/podman.js';

const execFileAsync = promisify(execFile);
const dir = mkdtempSync(path.join(tmpdir(), 'piccolo-terminal-'));
const stateDir = path.join(dir, 'state');
const IDLE_MS = 3000;
let podman: TestPodman;
let daemon: ServiceProcess;
let base = '';
let api: ApiSession;
let app = '';
let shellless = '';

/** A terminal client as the portal is: bytes in binary frames, JSON in text frames. */
class Terminal {
  output = '';
  controls: any[] = [];
  closed: Promise<{ code: number; reason: string }>;

  constructor(readonly ws: WebSocket) {
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (isBinary) this.output += data.toString('utf8');
      else this.controls.push(JSON.parse(data.toString('utf8')));
    });
    this.closed = new Promise((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  }

  type(text: string): void {
    this.ws.send(Buffer.from(text), { binary: true });
  }

  /** Resolves with the output once it matches. */
  async read(pattern: RegExp, what: string): Promise<RegExpMatchArray> {
    return waitFor(() => this.output.match(pattern) ?? undefined, 10_000, `${what}; output so far: ${JSON.stringify(this.output.slice(-300))}`);
  }
}

interface Attempt {
  cookie?: string;
  origin?: string;
  protocols?: string[];
  query?: string;
  name?: string;
}

function connect(options: Attempt = {}): WebSocket {
  const url = `${base.replace('http', 'ws')}/api/v1/apps/${options.name ?? app}/terminal${options.query ?? ''}`;
  const headers: Record<string, string> = { cookie: options.cookie ?? api.cookie };
  if (options.origin !== undefined) headers.origin = options.origin;
  return new WebSocket(url, options.protocols ?? ['piccolo-terminal', `piccolo-csrf.${api.csrf}`], { headers });
}

async function open(options: Attempt = {}): Promise<Terminal> {
  const terminal = new Terminal(connect({ origin: base, ...options }));
  await new Promise((resolve, reject) => {
    terminal.ws.once('open', resolve);
    terminal.ws.once('error', reject);
  });
  assert.is(terminal.ws.protocol, 'piccolo-terminal', 'the server selects the terminal subprotocol, never echoes the token');
  return terminal;
}

/** The HTTP status of a refused upgrade. */
function refusal(options: Attempt): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = connect(options);
    ws.on('unexpected-response', (_req, res) => {
      resolve(res.statusCode!);
      ws.terminate();
    });
    ws.on('open', () => reject(new Error('the upgrade was accepted')));
    ws.on('error', () => {});
  });
}

async function install(name: string, image: string): Promise<void> {
  const spec = `name: ${name}\nimage: ${image}\nlisteners:\n  - name: web\n    guest_port: 80\n    protocol: http\n`;
  const answer = await api.call('POST', '/api/v1/apps', { spec });
  assert.is(answer.status, 202, JSON.stringify(answer.body));
  const job = await waitFor(async () => {
    const { body } = await api.call('GET', `/api/v1/jobs/${answer.body.job.id}`);
    return body.status === 'running' ? undefined : body;
  }, 60_000, `install ${name}`);
  assert.is(job.status, 'succeeded', JSON.stringify(job));
}

async function signIn(): Promise<void> {
  assert.is((await api.call('POST', '/api/v1/auth/login', { password: TEST_PASSWORD })).status, 200);
}

function auditLines(): { event: string; outcome: string; client?: string; detail?: string }[] {
  return readFileSync(path.join(stateDir, 'audit.log'), 'utf8').trim().split('\n').map((line) => JSON.parse(line));
}

/** The processes in the app's container, by command line (Podman's compat top answers nothing). */
async function processes(name: string): Promise<string[]> {
  const { stdout } = await execFileAsync('podman', ['top', `piccolo-${name}`, 'args']);
  return stdout.trim().split('\n').slice(1).map((line) => line.trim());
}

// uvu 0.5 drops an error thrown in a before hook without a word: say it here.
test.before(async () => {
  try {
    await bundleServices({ outDir: TEST_BUNDLE_DIR, testHooks: true });
    podman = await startPodman();
    app = `${podman.prefix}term`;
    shellless = `${podman.prefix}nosh`;
    ({ proc: daemon, api: base } = await startTestDaemon(stateDir, { PICCOLO_PODMAN_SOCKET: podman.socketPath, PICCOLO_TERMINAL_IDLE_MS: String(IDLE_MS) }));
    api = await setUpWithApps(base, stateDir);
    await install(app, await podman.buildHttpdImage('term', 'terminal test'));
    // httpd alone: no sh in this image.
    await install(shellless, await podman.buildHttpdImage('nosh', 'no shell here', ['httpd']));
  } catch (err) {
    console.error('setup failed:', err);
    throw err;
  }
});

test.after(async () => {
  await daemon?.kill('SIGTERM');
  await podman?.stop();
  removeTestDir(dir);
});

test('refused without a session, with a foreign Origin, without or with a wrong CSRF token; a plain GET is 426', async () => {
  assert.is(await refusal({ cookie: '' }), 401);
  assert.is(await refusal({ origin: 'http://evil.example' }), 403);
  assert.is(await refusal({ origin: 'null' }), 403);
  assert.is(await refusal({ origin: base, protocols: ['piccolo-terminal'] }), 403);
  assert.is(await refusal({ origin: base, protocols: ['piccolo-terminal', 'piccolo-csrf.not-the-token'] }), 403);
  assert.is(await refusal({ origin: base, name: `${podman.prefix}missing` }), 404);
  assert.is(await refusal({ origin: base, query: '?cols=0&rows=24' }), 400);
  assert.is(await refusal({ origin: base, name: '%E0%A4%A' }), 400, 'a malformed escape in the path');
  assert.is((await api.call('GET', `/api/v1/apps/${app}/terminal`)).status, 426);
  const denied = auditLines().filter((line) => line.event === 'app.terminal.open' && line.outcome === 'denied');
  assert.is(denied.length, 4, `Origin and CSRF refusals of a signed-in client are audited: ${JSON.stringify(denied)}`);
});

test('a shell in the container: a command runs and its output comes back; resize reaches the TTY; exit closes with its code', async () => {
  const terminal = await open({ query: '?cols=100&rows=30' });
  await waitFor(() => terminal.controls.find((c) => c.type === 'ready'), 10_000, 'ready');
  const n = Math.floor(Math.random() * 1e6);
  // The typed line is echoed as typed; only the shell turns it into hello-<n+1>.
  terminal.type(`echo hello-$((${n}+1))\n`);
  await terminal.read(new RegExp(`\\r\\nhello-${n + 1}\\r\\n`), 'the command output');
  terminal.type('stty size\n');
  await terminal.read(/\r\n30 100\r\n/, 'the size asked for at connect');
  terminal.ws.send(JSON.stringify({ type: 'resize', cols: 123, rows: 45 }));
  await new Promise((resolve) => setTimeout(resolve, 200));
  terminal.type('stty size\n');
  await terminal.read(/\r\n45 123\r\n/, 'the new size');
  terminal.type('exit 3\n');
  const closed = await terminal.closed;
  assert.is(closed.code, 1000);
  assert.match(closed.reason, /the shell exited \(code 3\)/);
  assert.equal(terminal.controls.at(-1), { type: 'exit', code: 3 });
  assert.ok(auditLines().some((l) => l.event === 'app.terminal.open' && l.outcome === 'ok' && l.detail === app && l.client === '127.0.0.1'), 'open audited');
  await waitFor(() => auditLines().find((l) => l.event === 'app.terminal.close' && l.detail?.startsWith(`${app}: the shell exited (code 3) after`) && l.client === '127.0.0.1'), 5000, 'close audited');
});

test('a client that goes away leaves no shell behind, nor the command it was running', async () => {
  const terminal = await open();
  await waitFor(() => terminal.controls.find((c) => c.type === 'ready'), 10_000, 'ready');
  terminal.type('sleep 300\n');
  const leftovers = async () => (await processes(app)).filter((p) => p === '/bin/sh' || p.startsWith('sleep 300'));
  await waitFor(async () => ((await leftovers()).length === 2 ? true : undefined), 5000, 'the shell and its command run');
  terminal.ws.close();
  await terminal.closed;
  await waitFor(async () => ((await leftovers()).length === 0 ? true : undefined), 10_000, 'the shell and its command are gone');
  await waitFor(() => auditLines().find((l) => l.event === 'app.terminal.close' && l.detail?.startsWith(`${app}: the client closed`)), 5000, 'close audited');
});

test('a bad control message closes with 4400; an image without a shell closes with 4404; a stopped app with 4409', async () => {
  const terminal = await open();
  await waitFor(() => terminal.controls.find((c) => c.type === 'ready'), 10_000, 'ready');
  terminal.ws.send(JSON.stringify({ type: 'resize', cols: 'wide' }));
  assert.is((await terminal.closed).code, 4400);

  const noShell = await open({ name: shellless });
  const closed = await noShell.closed;
  assert.is(closed.code, 4404);
  assert.match(closed.reason, /no shell in this app's image \(\/bin\/sh is not there\)/);

  const stop = await api.call('POST', `/api/v1/apps/${shellless}/stop`, {});
  assert.is(stop.status, 202);
  await waitFor(async () => ((await api.call('GET', `/api/v1/apps/${shellless}`)).body.state === 'stopped' ? true : undefined), 30_000, 'stopped');
  const stopped = await (await open({ name: shellless })).closed;
  assert.is(stopped.code, 4409);
  assert.match(stopped.reason, /is not running/);
});

test('a quiet terminal is closed after the idle time', async () => {
  const terminal = await open();
  const t0 = Date.now();
  const closed = await terminal.closed;
  const after = Date.now() - t0;
  assert.is(closed.code, 4408);
  assert.match(closed.reason, /without activity/);
  assert.ok(after >= IDLE_MS - 200 && after < IDLE_MS + 3000, `closed after ${after} ms`);
});

/** The events stream of a session, with its close code once closed. */
async function eventsOf(session: ApiSession): Promise<{ ws: WebSocket; closed: Promise<number> }> {
  const ws = new WebSocket(`${base.replace('http', 'ws')}/api/v1/events`, { headers: { cookie: session.cookie, origin: base } });
  await new Promise((resolve) => ws.once('open', resolve));
  return { ws, closed: new Promise<number>((resolve) => ws.on('close', (code) => resolve(code))) };
}

test('logout closes the session\'s terminals and events stream, and only that session\'s', async () => {
  const other = new ApiSession(base);
  assert.is((await other.call('POST', '/api/v1/auth/login', { password: TEST_PASSWORD })).status, 200);
  const othersEvents = await eventsOf(other);
  const terminal = await open();
  await waitFor(() => terminal.controls.find((c) => c.type === 'ready'), 10_000, 'ready');
  const events = await eventsOf(api);
  assert.is((await api.call('POST', '/api/v1/auth/logout', {})).status, 204);
  const closed = await terminal.closed;
  assert.is(closed.code, 4401);
  assert.is(await events.closed, 4401);
  assert.is(othersEvents.ws.readyState, WebSocket.OPEN, 'another session keeps its stream');
  othersEvents.ws.close();
  await waitFor(() => auditLines().find((l) => l.event === 'app.terminal.close' && l.detail?.includes('the session ended')), 5000, 'close audited with its reason');
});

test('lock closes terminals first, before the apps stop', async () => {
  await signIn();
  const terminal = await open();
  await waitFor(() => terminal.controls.find((c) => c.type === 'ready'), 10_000, 'ready');
  const lock = api.call('POST', '/api/v1/crypto/lock', { confirm: true });
  const closed = await terminal.closed;
  assert.is(closed.code, 4401);
  assert.match(closed.reason, /locking/);
  assert.is((await lock).status, 200);
  assert.is(await refusal({ origin: base }), 401, 'the lock ended the session');
});

test.run();
