// The web terminal: a WebSocket attached to an interactive shell in an app's container (a TTY
// exec through Podman's API). Binary frames carry terminal bytes both ways; text frames carry
// JSON control ({type:'resize', cols, rows} in, {type:'ready'|'exit'} out). A shell inside an
// app is as strong as the app's own rights, so the socket is gated like a write (session, Origin,
// CSRF token as subprotocol), audited, closed when its session ends and after a quiet spell.
import type http from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import { PiccoloError } from '../../common/errors.js';
import type { Logger } from '../../common/logger.js';
import { clientAddress } from '../api/request.js';
import { gateUpgrade, refuseUpgrade } from '../api/upgrades.js';
import type { AuditLog } from '../auth/audit.js';
import type { SessionStore } from '../auth/sessions.js';
import type { Engine, ShellSession, TerminalSize } from './engine.js';
import type { AppManager } from './manager.js';

export const TERMINAL_PATH = '/api/v1/apps/:name/terminal';
/** The subprotocol the server selects; the client offers it beside piccolo-csrf.<token>. */
export const TERMINAL_PROTOCOL = 'piccolo-terminal';

/** Close codes; each close also carries a sentence to show. */
export const CLOSE = {
  exited: 1000,
  stopping: 1001,
  badMessage: 4400,
  signedOut: 4401,
  noShell: 4404,
  idle: 4408,
  notRunning: 4409,
  engine: 4502,
} as const;

export interface TerminalOptions {
  sessions: SessionStore;
  /** The running app manager; throws (423, 503) while apps are unavailable. */
  apps: () => Pick<AppManager, 'get'>;
  engine: Pick<Engine, 'canRun' | 'openShell'>;
  audit: AuditLog;
  logger: Logger;
  now?: () => number;
  shell?: string;
  /** A terminal with no byte in either direction for this long is closed. */
  idleMs?: number;
  /** How often idle terminals and expired sessions are looked for. */
  checkIntervalMs?: number;
}

const DEFAULT_SIZE: TerminalSize = { cols: 80, rows: 24 };
const MAX_DIMENSION = 1000;
/** Above this much unsent output, the shell's stream waits for the client. */
const HIGH_WATER_BYTES = 1 << 20;

interface OpenTerminal {
  ws: WebSocket;
  app: string;
  client: string;
  sessionId: string;
  openedAt: number;
  lastActivity: number;
  /** The reason to audit, set by whoever closes first. */
  closeReason?: string;
}

export class TerminalService {
  private readonly wss = new WebSocketServer({
    noServer: true,
    maxPayload: 64 * 1024,
    handleProtocols: (offered) => (offered.has(TERMINAL_PROTOCOL) ? TERMINAL_PROTOCOL : false),
  });
  private readonly terminals = new Set<OpenTerminal>();
  private timer: NodeJS.Timeout | undefined;
  private stopFollowingSessions: (() => void) | undefined;

  constructor(private readonly options: TerminalOptions) {}

  private get now(): number {
    return (this.options.now ?? Date.now)();
  }

  /** For the upgrade router, on TERMINAL_PATH. */
  readonly handleUpgrade = (req: http.IncomingMessage, socket: Duplex, head: Buffer, params: Record<string, string>): void => {
    const app = params.name!;
    const client = clientAddress(req);
    const gate = gateUpgrade(req, this.options.sessions, { csrf: true });
    if ('status' in gate) {
      // A signed-in browser sent by a foreign page, or without the token: worth a line in the audit.
      if (gate.session) void this.options.audit.record({ event: 'app.terminal.open', outcome: 'denied', client, detail: `${app}: bad Origin or CSRF token` });
      return refuseUpgrade(socket, gate.status, gate.reason);
    }
    const size = sizeFromQuery(req.url ?? '/');
    if (!size) return refuseUpgrade(socket, 400, 'Bad Request');
    void this.accept(req, socket, head, { app, client, sessionId: gate.session.id, size });
  };

  start(): void {
    this.stopFollowingSessions = this.options.sessions.onEnd((session) => {
      for (const terminal of this.terminals) if (terminal.sessionId === session.id) this.close(terminal, CLOSE.signedOut, 'the session ended (signed out or locked)');
    });
    this.timer = setInterval(() => this.sweep(), this.options.checkIntervalMs ?? Math.min(30_000, this.idleMs / 4));
  }

  stop(): void {
    clearInterval(this.timer);
    this.stopFollowingSessions?.();
    for (const terminal of this.terminals) this.close(terminal, CLOSE.stopping, 'the device service is stopping');
  }

  /** Before a lock: every terminal closes as its session will. */
  closeAll(reason: string): void {
    for (const terminal of this.terminals) this.close(terminal, CLOSE.signedOut, reason);
  }

  private async accept(req: http.IncomingMessage, socket: Duplex, head: Buffer, request: { app: string; client: string; sessionId: string; size: TerminalSize }): Promise<void> {
    let container: { id: string; state: string } | undefined;
    try {
      const view = await this.options.apps().get(request.app);
      container = { id: view.container?.id ?? '', state: view.state === 'running' && view.container?.state !== 'running' ? `container ${view.container?.state ?? 'missing'}` : view.state };
    } catch (err) {
      if (!(err instanceof PiccoloError)) this.options.logger.error('terminal: cannot read the app', { err });
      return refuseUpgrade(socket, err instanceof PiccoloError ? err.status : 500, err instanceof PiccoloError ? err.code : 'Internal Server Error');
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => void this.run(ws, request, container!));
  }

  private async run(ws: WebSocket, request: { app: string; client: string; sessionId: string; size: TerminalSize }, container: { id: string; state: string }): Promise<void> {
    const { app } = request;
    const shellPath = this.options.shell ?? '/bin/sh';
    if (container.state !== 'running') return ws.close(CLOSE.notRunning, `${app} is not running (${container.state}); start it first`);
    let shell: ShellSession;
    try {
      if (!(await this.options.engine.canRun(container.id, shellPath))) return ws.close(CLOSE.noShell, `no shell in this app's image (${shellPath} is not there)`);
      shell = await this.options.engine.openShell(container.id, shellPath, request.size);
    } catch (err) {
      this.options.logger.warn('terminal: the engine refused the shell', { app, err });
      return ws.close(CLOSE.engine, closeReason((err as Error).message));
    }
    // The client may have left, or its session ended, while the shell was starting.
    if (ws.readyState !== ws.OPEN || !this.options.sessions.peek(request.sessionId)) {
      void shell.close();
      if (ws.readyState === ws.OPEN) ws.close(CLOSE.signedOut, 'the session ended (signed out or locked)');
      return;
    }
    const terminal: OpenTerminal = { ws, app, client: request.client, sessionId: request.sessionId, openedAt: this.now, lastActivity: this.now };
    this.terminals.add(terminal);
    await this.options.audit.record({ event: 'app.terminal.open', outcome: 'ok', client: request.client, detail: app });
    ws.send(JSON.stringify({ type: 'ready', shell: shellPath }));
    this.pipe(terminal, shell);
  }

  private pipe(terminal: OpenTerminal, shell: ShellSession): void {
    const { ws } = terminal;
    const { stream } = shell;
    stream.on('data', (chunk: Buffer) => {
      terminal.lastActivity = this.now;
      ws.send(chunk, { binary: true }, () => {
        if (stream.isPaused() && ws.bufferedAmount < HIGH_WATER_BYTES / 2) stream.resume();
      });
      if (ws.bufferedAmount > HIGH_WATER_BYTES) stream.pause();
    });
    stream.on('end', () => {
      void shell.exitCode().then((code) => {
        if (ws.readyState !== ws.OPEN) return;
        ws.send(JSON.stringify({ type: 'exit', code: code ?? null }));
        this.close(terminal, CLOSE.exited, `the shell exited${code === undefined ? '' : ` (code ${code})`}`);
      });
    });
    stream.on('error', (err) => {
      this.options.logger.debug('terminal stream error', { app: terminal.app, err });
      this.close(terminal, CLOSE.engine, 'the connection to the container broke');
    });
    ws.on('message', (data: RawData, isBinary: boolean) => {
      terminal.lastActivity = this.now;
      // Typing is activity: it keeps the session alive as requests would.
      if (!this.options.sessions.get(terminal.sessionId)) return this.close(terminal, CLOSE.signedOut, 'the session ended (signed out or locked)');
      if (isBinary) return void stream.write(toBuffer(data));
      const size = resizeMessage(toBuffer(data).toString('utf8'));
      if (!size) return this.close(terminal, CLOSE.badMessage, 'text frames must be {"type":"resize","cols":N,"rows":N}');
      shell.resize(size).catch((err) => this.options.logger.debug('terminal resize failed', { app: terminal.app, err }));
    });
    ws.on('close', (code: number, reason: Buffer) => {
      void shell.close();
      this.terminals.delete(terminal);
      const why = terminal.closeReason ?? (reason.length ? reason.toString() : `the client closed (${code})`);
      const seconds = Math.round((this.now - terminal.openedAt) / 1000);
      void this.options.audit.record({ event: 'app.terminal.close', outcome: 'ok', client: terminal.client, detail: `${terminal.app}: ${why} after ${seconds} s` });
    });
    ws.on('error', (err) => this.options.logger.debug('terminal client error', { app: terminal.app, err }));
  }

  private get idleMs(): number {
    return this.options.idleMs ?? 15 * 60_000;
  }

  private sweep(): void {
    const { idleMs } = this;
    for (const terminal of this.terminals) {
      if (!this.options.sessions.peek(terminal.sessionId)) this.close(terminal, CLOSE.signedOut, 'the session ended (signed out or locked)');
      else if (this.now - terminal.lastActivity >= idleMs) this.close(terminal, CLOSE.idle, `closed after ${idleMs >= 60_000 ? `${Math.round(idleMs / 60_000)} min` : `${Math.round(idleMs / 1000)} s`} without activity`);
    }
  }

  private close(terminal: OpenTerminal, code: number, reason: string): void {
    terminal.closeReason ??= reason;
    if (terminal.ws.readyState === terminal.ws.OPEN) terminal.ws.close(code, closeReason(reason));
    // A client that does not answer the close handshake is dropped.
    setTimeout(() => terminal.ws.terminate(), 5000).unref();
  }
}

/** ?cols=&rows= (optional, 1..1000); undefined when present but not a whole number in range. */
function sizeFromQuery(url: string): TerminalSize | undefined {
  const query = new URL(url, 'http://piccolo.invalid').searchParams;
  const read = (key: 'cols' | 'rows') => (query.has(key) ? dimension(Number(query.get(key))) : DEFAULT_SIZE[key]);
  const cols = read('cols');
  const rows = read('rows');
  return cols && rows ? { cols, rows } : undefined;
}

function resizeMessage(text: string): TerminalSize | undefined {
  let message: { type?: unknown; cols?: unknown; rows?: unknown };
  try {
    message = JSON.parse(text);
  } catch {
    return undefined;
  }
  const cols = dimension(message?.cols);
  const rows = dimension(message?.rows);
  return message?.type === 'resize' && cols && rows ? { cols, rows } : undefined;
}

function dimension(value: unknown): number | undefined {
  return Number.isInteger(value) && (value as number) >= 1 && (value as number) <= MAX_DIMENSION ? (value as number) : undefined;
}

function toBuffer(data: RawData): Buffer {
  return Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data);
}

/** A close frame's reason is at most 123 bytes. */
function closeReason(text: string): string {
  if (Buffer.byteLength(text) <= 123) return text;
  let reason = text.slice(0, 120);
  while (Buffer.byteLength(reason) > 120) reason = reason.slice(0, -1);
  return `${reason}...`;
}
