// The proxy's own answers (404 for an unknown host, 502/504 for a silent app, 401/403/429 from
// middleware): a short HTML page for browsers, the same JSON error shape as the daemon's API for
// everything else.
import type http from 'node:http';
import type net from 'node:net';
import { STATUS_CODES } from 'node:http';

export function sendProblem(req: http.IncomingMessage, res: http.ServerResponse, status: number, message: string, headers: Record<string, string> = {}): void {
  const html = (req.headers.accept ?? '').includes('text/html');
  const body = html ? page(status, message) : JSON.stringify({ error: { code: code(status), message } });
  res.writeHead(status, {
    'content-type': html ? 'text/html; charset=utf-8' : 'application/json',
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
    ...headers,
  });
  res.end(req.method === 'HEAD' ? undefined : body);
}

/** For a socket that left the HTTP server (an upgrade): the response is written by hand, then the connection closes. */
export function writeRawProblem(socket: net.Socket, status: number, message: string, headers: Record<string, string> = {}): void {
  if (!socket.writable) return void socket.destroy();
  const body = JSON.stringify({ error: { code: code(status), message } });
  const extra = Object.entries(headers).map(([name, value]) => `${name}: ${value}\r\n`).join('');
  socket.end(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n${extra}connection: close\r\n\r\n${body}`);
}

function code(status: number): string {
  return (STATUS_CODES[status] ?? 'error').toLowerCase().replace(/[^a-z]+/g, '_');
}

function page(status: number, message: string): string {
  const title = `${status} ${STATUS_CODES[status] ?? ''}`;
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width"><title>${title}</title>
<style>body{font-family:system-ui,sans-serif;max-width:36rem;margin:15vh auto;padding:0 1rem;color:#222}h1{font-size:1.4rem}p{color:#555}</style></head>
<body><h1>${title}</h1><p>${escapeHtml(message)}</p><p><small>Piccolo OS</small></p></body></html>`;
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
