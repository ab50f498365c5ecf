// One WebSocket session with a Nexus relay (§1, §2, §4 of the protocol note): the two-token
// handshake, re-authentication without touching streams, keepalive pings that race a read
// deadline, and the streams multiplexed on it. The message handler never waits on a local
// socket: each stream queues and pauses on its own (stream.ts). run() resolves once the session
// is over, with everything it opened closed.
import type { Duplex } from 'node:stream';
import type { SecureContextOptions } from 'node:tls';
import WebSocket from 'ws';
import type { RemoteTable } from '../common/remote-contract.js';
import type { Logger } from '../common/logger.js';
import type { Dialer } from './dialer.js';
import { CREDIT_WINDOW, MAX_SERVER_MESSAGE, decodeFrame, encodeControl, encodeData, type ControlMessage, type ServerChallenge } from './protocol.js';
import { route } from './router.js';
import { Stream, type StreamHost } from './stream.js';
import type { TokenIssuer } from './tokens.js';

export interface SessionTiming {
  /** TLS + WebSocket upgrade. */
  upgradeTimeoutMs: number;
  /** From sending stage 0 to the handshake_challenge (the reference waits 15 s). */
  challengeTimeoutMs: number;
  pingIntervalMs: number;
  /** Silence (no message, no pong) longer than this ends the session: two ping intervals. */
  readDeadlineMs: number;
  /** Local EOF: how long queued frames may wait for credits. */
  drainTimeoutMs: number;
  /** Relay disconnect: how long the local peer may take to close after our FIN. */
  closeGraceMs: number;
  /** A stream with no data either way this long is asked ping_client (does the relay still know it?). */
  streamIdleMs: number;
  /** Without pong_client this long after, the stream is closed with disconnect "timeout". */
  pongTimeoutMs: number;
  /** How often streams are checked for idleness. */
  idleScanMs: number;
}

export const DEFAULT_TIMING: SessionTiming = {
  upgradeTimeoutMs: 15_000,
  challengeTimeoutMs: 15_000,
  pingIntervalMs: 5_000,
  readDeadlineMs: 10_000,
  drainTimeoutMs: 30_000,
  closeGraceMs: 2_000,
  streamIdleMs: 60_000,
  pongTimeoutMs: 5_000,
  idleScanMs: 5_000,
};

/** Above this many bytes waiting in the WebSocket, streams stop sending until it has flushed below LOW. */
const SEND_BUFFER_HIGH = 4 * 1024 * 1024;
const SEND_BUFFER_LOW = 1024 * 1024;
/** Ids we ended lately: their late DATA is dropped quietly, not answered with disconnect "unknown". */
const RECENTLY_ENDED = 4096;

export interface SessionOptions {
  url: string;
  tokens: TokenIssuer;
  /** The current remote table; read per stream, so route changes apply without a new session. */
  table: () => RemoteTable;
  dialer: Dialer;
  logger: Logger;
  /** Byte counters that outlive the session (the status shows totals). */
  counters: { bytesIn: number; bytesOut: number };
  /** Extra trust for the relay's certificate (tests); production uses the system roots. */
  tls?: Pick<SecureContextOptions, 'ca'>;
  timing?: Partial<SessionTiming>;
  /** Stage 1 went out: the session counts as up (there is no acknowledgement, §1.3). */
  onOpen?: () => void;
}

export interface SessionEnd {
  /** Whether stage 1 was sent. */
  opened: boolean;
  /** Why it ended, in words (the relay's close reason when it gave one). */
  reason: string;
  /** True when we ended it (close()). */
  byUs: boolean;
}

type Phase = 'connecting' | 'stage0' | 'open' | 'over';

export class RelaySession implements StreamHost {
  private readonly timing: SessionTiming;
  private readonly streams = new Map<string, Stream>();
  private readonly recentlyEnded = new Set<string>();
  private readonly closingSockets = new Set<Duplex>();
  private ws: WebSocket | undefined;
  private phase: Phase = 'connecting';
  private congested = false;
  private failure: string | undefined;
  private byUs = false;
  private timers: { challenge?: NodeJS.Timeout; ping?: NodeJS.Timeout; deadline?: NodeJS.Timeout; idleScan?: NodeJS.Timeout; closing?: NodeJS.Timeout } = {};

  constructor(private readonly options: SessionOptions) {
    this.timing = { ...DEFAULT_TIMING, ...options.timing };
  }

  get counters() {
    return this.options.counters;
  }

  get streamCount(): number {
    return this.streams.size;
  }

  /** Connects and serves until the session ends; never rejects. */
  async run(): Promise<SessionEnd> {
    let stage0: string;
    try {
      // Signed before dialing: the relay wants it within 10 s of the upgrade (§1.3).
      stage0 = await this.options.tokens.stage0();
    } catch (err) {
      return { opened: false, reason: `cannot sign the token: ${(err as Error).message}`, byUs: false };
    }
    if (this.byUs) return { opened: false, reason: 'stopped', byUs: true };
    return new Promise((resolve) => {
      const ws = new WebSocket(this.options.url, {
        // No subprotocol (none is passed) and no h2: Node's TLS offers no ALPN unless asked (§1.1).
        // The relay's first frame may carry a 64 KiB prelude.
        perMessageDeflate: false,
        maxPayload: MAX_SERVER_MESSAGE,
        handshakeTimeout: this.timing.upgradeTimeoutMs,
        // Client frames must carry a mask, which guards plaintext HTTP intermediaries; inside TLS no
        // intermediary reads them, and an all-zero key lets ws (and the relay) skip XORing every byte.
        generateMask: this.options.url.startsWith('wss:') ? (mask: Buffer) => void mask.fill(0) : undefined,
        ...this.options.tls,
      });
      this.ws = ws;
      ws.on('open', () => {
        this.phase = 'stage0';
        ws.send(stage0);
        this.timers.challenge = setTimeout(() => this.fail(`no handshake_challenge within ${this.timing.challengeTimeoutMs} ms`), this.timing.challengeTimeoutMs);
      });
      ws.on('message', (data: Buffer, isBinary: boolean) => {
        this.heard();
        if (isBinary) this.onBinary(data);
        else void this.onText(data.toString('utf8'));
      });
      ws.on('pong', () => this.heard());
      ws.on('ping', () => this.heard());
      ws.on('error', (err) => (this.failure ??= err.message));
      ws.on('close', (code, reasonBytes) => {
        const opened = this.phase === 'open';
        this.teardown();
        const reason = reasonBytes.toString('utf8');
        resolve({ opened, byUs: this.byUs, reason: this.failure ?? (reason ? `relay closed the session (${code}): ${reason}` : `relay connection closed (${code})`) });
      });
    });
  }

  /** Ends the session (shutdown, new configuration); run() then resolves. */
  close(reason = 'stopped'): void {
    this.byUs = true;
    this.failure ??= reason;
    const ws = this.ws;
    if (!ws || ws.readyState === WebSocket.CLOSED) return;
    if (ws.readyState === WebSocket.CONNECTING) return ws.terminate();
    ws.close(1000, 'shutdown');
    // A relay that never answers our Close must not hold the stop.
    this.timers.closing = setTimeout(() => ws.terminate(), 2000);
  }

  // ---- StreamHost ----

  sendControl(message: ControlMessage): void {
    this.send(encodeControl(message));
  }

  sendData(clientId: string, payload: Buffer): void {
    this.send(encodeData(clientId, payload));
  }

  canSendData(): boolean {
    if (!this.congested && (this.ws?.bufferedAmount ?? 0) > SEND_BUFFER_HIGH) this.congested = true;
    return !this.congested && this.phase === 'open';
  }

  streamEnded(clientId: string): void {
    this.streams.delete(clientId);
    this.recentlyEnded.add(clientId);
    if (this.recentlyEnded.size > RECENTLY_ENDED) this.recentlyEnded.delete(this.recentlyEnded.values().next().value!);
  }

  lingering(socket: Duplex): void {
    this.closingSockets.add(socket);
    socket.once('close', () => this.closingSockets.delete(socket));
  }

  // ---- internals ----

  private send(frame: Buffer): void {
    const ws = this.ws;
    if (this.phase !== 'open' || !ws || ws.readyState !== WebSocket.OPEN) return;
    ws.send(frame, () => this.flushed());
  }

  /** A send reached the socket: once the buffer is low again, streams may send more. */
  private flushed(): void {
    if (!this.congested || (this.ws?.bufferedAmount ?? 0) > SEND_BUFFER_LOW) return;
    this.congested = false;
    for (const stream of [...this.streams.values()]) stream.resume();
  }

  private async onText(text: string): Promise<void> {
    let challenge: ServerChallenge;
    try {
      challenge = JSON.parse(text) as ServerChallenge;
    } catch {
      return this.options.logger.warn('relay sent a text message that is not JSON; ignored');
    }
    if (typeof challenge?.nonce !== 'string') return this.options.logger.warn('relay sent an unknown text message; ignored', { type: challenge?.type });
    if (challenge.type === 'handshake_challenge' && this.phase === 'stage0') {
      clearTimeout(this.timers.challenge);
      const token = await this.sign(() => this.options.tokens.stage1(challenge.nonce));
      if (token === undefined || this.phase !== 'stage0') return;
      this.ws!.send(token);
      this.phase = 'open';
      this.startKeepalive();
      this.options.onOpen?.();
    } else if (challenge.type === 'reauth_challenge' && this.phase === 'open') {
      // Streams carry on meanwhile: only the token goes out, as a text message.
      const token = await this.sign(() => this.options.tokens.reauth(challenge.nonce));
      if (token === undefined || this.phase !== 'open') return;
      this.ws!.send(token);
      this.options.logger.debug('answered reauth_challenge');
    } else {
      this.options.logger.warn('relay sent an unexpected text message; ignored', { type: challenge.type, phase: this.phase });
    }
  }

  private async sign(issue: () => Promise<string>): Promise<string | undefined> {
    try {
      return await issue();
    } catch (err) {
      this.fail(`cannot sign the token: ${(err as Error).message}`);
      return undefined;
    }
  }

  private onBinary(message: Buffer): void {
    if (this.phase !== 'open') return this.fail('relay sent a binary message during the handshake');
    const frame = decodeFrame(message);
    if (frame.kind === 'invalid') return this.options.logger.warn('invalid frame from the relay; dropped', { reason: frame.reason });
    if (frame.kind === 'data') return this.onData(frame.clientId, frame.payload);
    const { message: control } = frame;
    const stream = this.streams.get(control.client_id);
    switch (control.event) {
      case 'connect':
        return this.onConnect(control);
      case 'disconnect':
        return stream?.closedByRelay();
      case 'resume_stream':
        return stream?.grant(control.credits);
      case 'ping_client':
        if (stream) this.sendControl({ event: 'pong_client', client_id: control.client_id });
        return;
      case 'pong_client':
        return stream?.ponged();
      default:
        // pause_stream is advisory (we follow credits); others are for features we do not use.
        return;
    }
  }

  private onData(clientId: string, payload: Buffer): void {
    const stream = this.streams.get(clientId);
    if (stream) return stream.fromRelay(payload);
    if (this.recentlyEnded.has(clientId)) return;
    this.streamEnded(clientId);
    this.sendControl({ event: 'disconnect', client_id: clientId, reason: 'unknown' });
  }

  private onConnect(connect: ControlMessage): void {
    const clientId = connect.client_id;
    if (this.streams.has(clientId)) return this.options.logger.warn('relay reused a live client id; ignored', { clientId });
    const decision = route(connect, this.options.table());
    if (decision.kind === 'refuse') {
      this.options.logger.info('stream refused', { clientId, hostname: connect.hostname, reason: decision.reason });
      this.streamEnded(clientId);
      return this.sendControl({ event: 'disconnect', client_id: clientId, reason: 'dial_failed' });
    }
    const stream = new Stream({
      clientId,
      initialCredits: connect.credits,
      host: this,
      logger: this.options.logger,
      drainTimeoutMs: this.timing.drainTimeoutMs,
      closeGraceMs: this.timing.closeGraceMs,
    });
    this.streams.set(clientId, stream);
    // The forward grant goes out at once, before the dial: the relay may then stream the whole window.
    this.sendControl({ event: 'resume_stream', client_id: clientId, credits: CREDIT_WINDOW });
    const dial = Promise.resolve().then(() =>
      this.options.dialer({ ingress: decision.ingress, hostname: decision.hostname, clientIp: connect.client_ip ?? '', connPort: connect.conn_port ?? 0 }),
    );
    stream.attach(dial);
  }

  private startKeepalive(): void {
    this.timers.ping = setInterval(() => this.ws?.ping(), this.timing.pingIntervalMs);
    this.timers.deadline = setTimeout(() => this.fail(`relay silent for ${this.timing.readDeadlineMs} ms`), this.timing.readDeadlineMs);
    // Zombie check (§4): a stream the relay forgot would otherwise hold its local socket forever.
    this.timers.idleScan = setInterval(() => {
      const now = Date.now();
      for (const stream of [...this.streams.values()]) stream.checkIdle(now, this.timing.streamIdleMs, this.timing.pongTimeoutMs);
    }, this.timing.idleScanMs);
  }

  /** Anything from the relay proves the link alive. */
  private heard(): void {
    this.timers.deadline?.refresh();
  }

  /** Ends the session from our side after a protocol or liveness failure. */
  private fail(reason: string): void {
    if (this.phase === 'over') return;
    this.failure ??= reason;
    this.options.logger.warn('relay session failed', { reason });
    this.ws?.terminate();
  }

  private teardown(): void {
    this.phase = 'over';
    for (const timer of Object.values(this.timers)) clearTimeout(timer);
    clearInterval(this.timers.ping);
    this.timers = {};
    for (const stream of [...this.streams.values()]) stream.abort();
    for (const socket of this.closingSockets) socket.destroy();
    this.streams.clear();
    this.recentlyEnded.clear();
  }
}
