// The proxy's own answers (404 for an unknown host, 502/504 for an app that is down or silent,
// 401/403/429 from middleware): a short HTML page for browsers, the same JSON error shape as the
// daemon's API for everything else. A page is what a person sees when an app is down, so it says
// what is wrong in plain words, what to do, and links to the portal where they can see why.
import type http from 'node:http';
import type net from 'node:net';
import { STATUS_CODES } from 'node:http';

export interface Problem {
  status: number;
  /** What happened, in one sentence: the JSON error's message, and the page's first paragraph. */
  message: string;
  /** The page's heading ("This app is not running"); the status text when absent. */
  title?: string;
  /** What the person can do about it. */
  advice?: string;
  /** Where to go from here, e.g. the portal as this client reaches it. */
  link?: { href: string; text: string };
  headers?: Record<string, string>;
}

// The page has no script at all; its one inline style is the only thing it may load.
const PAGE_CSP = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

export function sendProblem(req: http.IncomingMessage, res: http.ServerResponse, problem: Problem): void {
  const html = (req.headers.accept ?? '').includes('text/html');
  const body = html ? page(problem) : JSON.stringify({ error: { code: code(problem.status), message: problem.message } });
  res.writeHead(problem.status, {
    'content-type': html ? 'text/html; charset=utf-8' : 'application/json',
    'content-length': Buffer.byteLength(body),
    // Per request and per person (the sign-in redirect, a gated app's error): never kept by a cache.
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
    ...(html ? { 'content-security-policy': PAGE_CSP } : {}),
    ...problem.headers,
  });
  res.end(req.method === 'HEAD' ? undefined : body);
}

/** For a socket that left the HTTP server (an upgrade): the response is written by hand, then the connection closes. */
export function writeRawProblem(socket: net.Socket, { status, message, headers = {} }: Problem): void {
  if (!socket.writable) return void socket.destroy();
  const body = JSON.stringify({ error: { code: code(status), message } });
  const extra = Object.entries(headers).map(([name, value]) => `${name}: ${value}\r\n`).join('');
  socket.end(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\ncache-control: no-store\r\n${extra}connection: close\r\n\r\n${body}`);
}

function code(status: number): string {
  return (STATUS_CODES[status] ?? 'error').toLowerCase().replace(/[^a-z]+/g, '_');
}

// Colours meet WCAG AA in both schemes: #1f1f1f/#fff 16.5:1, #4d4d4d/#fff 8.5:1, #0b57d0/#fff 6.4:1;
// dark #ececec/#161616 15.3:1, #c2c2c2/#161616 10.2:1, #9ec1ff/#161616 9.9:1.
const STYLE =
  ':root{color-scheme:light dark;--fg:#1f1f1f;--muted:#4d4d4d;--bg:#fff;--link:#0b57d0}' +
  '@media (prefers-color-scheme:dark){:root{--fg:#ececec;--muted:#c2c2c2;--bg:#161616;--link:#9ec1ff}}' +
  '*{box-sizing:border-box}body{margin:0;background:var(--bg);color:var(--fg);font:1rem/1.5 system-ui,sans-serif}' +
  'main{max-width:36rem;margin:12vh auto;padding:0 1rem;overflow-wrap:anywhere}h1{font-size:1.5rem;line-height:1.25;margin:0 0 1rem}' +
  'p{margin:0 0 1rem}.muted{color:var(--muted);font-size:.875rem}a{color:var(--link)}' +
  'a:focus-visible{outline:3px solid var(--link);outline-offset:2px}.go{font-weight:600}';

function page({ status, message, title, advice, link }: Problem): string {
  const heading = title ?? `${status} ${STATUS_CODES[status] ?? 'Error'}`;
  return (
    `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">` +
    `<title>${escapeHtml(heading)} · Piccolo OS</title><style>${STYLE}</style></head><body><main>` +
    `<h1>${escapeHtml(heading)}</h1><p>${escapeHtml(sentence(message))}</p>` +
    (advice ? `<p>${escapeHtml(advice)}</p>` : '') +
    (link ? `<p class="go"><a href="${escapeHtml(link.href)}">${escapeHtml(link.text)}</a></p>` : '') +
    `<p class="muted">Error ${status} · Piccolo OS</p></main></body></html>`
  );
}

/** The API's messages are lower-case clauses; a page shows them as sentences. */
function sentence(text: string): string {
  const capital = text.charAt(0).toUpperCase() + text.slice(1);
  return /[.!?]$/.test(capital) ? capital : `${capital}.`;
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
