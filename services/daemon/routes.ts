// The daemon's HTTP surface: the API under /api/v1 and the portal pages.
import { Router } from '../common/http.js';
import type { Logger } from '../common/logger.js';
import { VERSION } from '../common/version.js';
import wizardPage from './wizard/index.html';

const PAGE_HEADERS = {
  'content-type': 'text/html; charset=utf-8',
  // The portal loads nothing from elsewhere; the inline script is the wizard's own.
  'content-security-policy': "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'",
  'referrer-policy': 'no-referrer',
};

export function daemonRoutes(logger: Logger): Router {
  return new Router(logger)
    .on('GET', '/', () => ({ headers: PAGE_HEADERS, body: wizardPage }))
    .on('GET', '/health/live', () => ({ body: { live: true } }))
    .on('GET', '/api/v1/version', () => ({ body: { name: 'piccolod', version: VERSION, api: 'v1', node: process.version } }));
}
