import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type http from 'node:http';
import { PassThrough } from 'node:stream';
import { UpgradeRouter } from '../../services/daemon/api/upgrades.js';

/** What the router wrote on the socket before ending it. */
function answerTo(router: UpgradeRouter, url: string): Promise<string> {
  const socket = new PassThrough();
  let written = '';
  socket.on('data', (chunk: Buffer) => (written += chunk));
  const ended = new Promise<string>((resolve) => socket.on('end', () => resolve(written)));
  router.handle({ url } as http.IncomingMessage, socket, Buffer.alloc(0));
  return ended;
}

test('an upgrade goes to its route by path; an unknown path is a 404, a malformed escape a 400', async () => {
  const seen: string[] = [];
  const router = new UpgradeRouter().on('/api/v1/apps/:name/terminal', (_req, socket, _head, params) => {
    seen.push(params.name!);
    socket.end('accepted');
  });
  assert.is(await answerTo(router, '/api/v1/apps/wiki/terminal'), 'accepted');
  assert.equal(seen, ['wiki']);
  assert.match(await answerTo(router, '/api/v1/nothing'), /^HTTP\/1.1 404 /);
  assert.match(await answerTo(router, '/api/v1/apps/%ff%/terminal'), /^HTTP\/1.1 400 /);
});

test('once closed (its sockets\' modules stopped), every upgrade is refused with a 503 and reaches no handler', async () => {
  let reached = false;
  const router = new UpgradeRouter().on('/api/v1/events', (_req, socket) => {
    reached = true;
    socket.end('accepted');
  });
  router.close();
  assert.match(await answerTo(router, '/api/v1/events'), /^HTTP\/1.1 503 Service Unavailable\r\n/);
  assert.not.ok(reached);
});

test.run();
