// One backend's WebSocket on the hub: the two-token handshake (§1.3), then the multiplexed streams,
// keepalive (§4) and re-authentication (§1.5), as the Nexus server v0.3.14 does them.
import { randomBytes } from 'node:crypto';
import type dgram from 'node:dgram';
import net from 'node:net';
import type { WebSocket } from 'ws';
import type { Logger } from '../common/logger.js';
import { decodeFrame, encodeControl, encodeData, newClientId, type ControlMessage, type Frame, type ServerChallenge } from '../tunnel/protocol.js';
import { HandshakeError, claimDifference, verifyToken, type BackendClaims, type ClaimPolicy } from './claims.js';
import { OUTBOUND_DIAL_TIMEOUT_MS, checkOutbound } from './outbound.js';
import { UdpFlow } from './udp.js';
import { UserStream, type RelayStream, type StreamLimits } from './user-stream.js';

export interface SessionRules {
  authTimeoutMs: number;
  pingIntervalMs: number;
  readDeadlineMs: number;
  /** A WebSocket congested this long drops the backend. */
  writeTimeoutMs: number;
  /** 0: connect carries no credits and nothing is replenished (an old server). */
  grantCredits: number;
  /** Overrides the token's reauth_interval_seconds when set. */
  reauthIntervalSeconds?: number;
  stream: StreamLimits;
  udpMaxDatagramBytes: number;
}

export interface SessionHooks {
  registered(session: BackendSession): void;
  rejected(session: BackendSession, reason: string): void;
  frame(session: BackendSession, from: 'backend' | 'relay', frame: Frame): void;
  closed(session: BackendSession, code: number): void;
  /** A socket the session opened itself (outbound), for the relay to end when it stops. */
  opened(socket: net.Socket): void;
}

/** What the route sniffing found, for the connect message. */
export interface NewStream {
  hostname: string;
  isTls: boolean;
  connPort: number;
  prelude: Buffer;
}

/** Go's websocket library cannot send a Close reason longer than this; the peer sees 1006 instead. */
const MAX_CLOSE_REASON_BYTES = 123;
const POLICY_VIOLATION = 1008;
/** Unsent bytes on the WebSocket above which users' reads pause (the server's bounded lanes). */
const WEBSOCKET_HIGH_WATER = 4 * 1024 * 1024;

type HandshakeState = { stage: 'stage0' } | { stage: 'stage1'; stage0: BackendClaims; nonce: string } | { stage: 'registered' };
type Message = [data: Buffer, isBinary: boolean];

export class BackendSession {
  claims: BackendClaims | undefined;
  readonly streams = new Map<string, RelayStream>();
  private state: HandshakeState = { stage: 'stage0' };
  private authTimer: NodeJS.Timeout | undefined;
  private pingTimer: NodeJS.Timeout | undefined;
  private readDeadline: NodeJS.Timeout | undefined;
  private reauthTimer: NodeJS.Timeout | undefined;
  private reauth: { nonce: string; timer: NodeJS.Timeout } | undefined;
  /** Messages that arrive while a handshake token is being checked, handled after it in order. */
  private backlog: Message[] | undefined;
  /** The code of a Close frame we sent, reported instead of the 1006 of a peer that did not echo it. */
  private sentCloseCode: number | undefined;
  private writeStall: NodeJS.Timeout | undefined;
  /** Outbound connections, established or being dialed. */
  private outbound = 0;

  constructor(
    readonly id: string,
    private readonly ws: WebSocket,
    private readonly socket: net.Socket,
    private readonly policy: ClaimPolicy,
    private readonly rules: SessionRules,
    private readonly hooks: SessionHooks,
    private readonly logger: Logger,
  ) {
    ws.on('message', (data: Buffer, isBinary: boolean) => this.onMessage(data, isBinary));
    ws.on('pong', () => this.touch());
    ws.on('error', (err: Error & { code?: string }) => {
      // ws has sent Close 1009 itself (maxPayload), as the server does for oversized messages.
      if (err.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH') this.sentCloseCode = 1009;
      logger.info('backend socket error', { backend: id, err });
    });
    ws.on('close', (code) => this.onClose(this.sentCloseCode ?? code));
    socket.on('drain', () => this.drained());
    this.authTimer = setTimeout(() => this.reject('stage0 token not received within the auth timeout'), rules.authTimeoutMs);
  }

  /** Announces a new end-user connection and starts relaying it; false if this backend is going away. */
  open(socket: net.Socket, route: NewStream): boolean {
    // Closing (a Close frame sent, the echo awaited): still in the pools until 'close', but gone.
    if (this.ws.readyState !== this.ws.OPEN) return false;
    const clientId = newClientId();
    const client = `${socket.remoteFamily === 'IPv6' ? `[${socket.remoteAddress}]` : socket.remoteAddress}:${socket.remotePort}`;
    const stream = new UserStream(clientId, socket, this, this.rules.stream);
    this.streams.set(clientId, stream);
    this.sendControl({ event: 'connect', client_id: clientId, conn_port: route.connPort, client_ip: client, transport: 'tcp', hostname: route.hostname, is_tls: route.isTls, credits: this.rules.grantCredits });
    if (route.prelude.length) this.sendData(clientId, route.prelude);
    stream.start();
    return true;
  }

  /** The first datagram of a new UDP flow: announce it; the caller then forwards the datagram. */
  openUdp(socket: dgram.Socket, peer: dgram.RemoteInfo, connPort: number): UdpFlow | undefined {
    const route = this.claims?.udpRoutes.find((r) => r.port === connPort);
    if (!route || this.ws.readyState !== this.ws.OPEN) return undefined;
    const clientId = newClientId();
    const { enforceCredits, replenishBatch } = this.rules.stream;
    const flow = new UdpFlow(clientId, socket, peer, this, { enforceCredits, replenishBatch, idleMs: route.idleSeconds * 1000, maxDatagramBytes: this.rules.udpMaxDatagramBytes });
    this.streams.set(clientId, flow);
    const client = peer.family === 'IPv6' ? `[${peer.address}]:${peer.port}` : `${peer.address}:${peer.port}`;
    this.sendControl({ event: 'connect', client_id: clientId, conn_port: connPort, client_ip: client, transport: 'udp', hostname: `udp:${connPort}`, credits: this.rules.grantCredits });
    return flow;
  }

  /** outbound_connect: dial for the backend; from success on, the stream is like an inbound one but without connect. */
  private openOutbound(clientId: string, targetAddr: unknown): void {
    const refuse = (reason: string) => this.sendControl({ event: 'outbound_result', client_id: clientId, reason });
    const check = checkOutbound(clientId, targetAddr, this.claims!, this.policy.outbound, this.outbound);
    if ('refusal' in check) return refuse(check.refusal);
    if (this.streams.has(clientId)) return refuse('client id already in use');
    this.outbound++;
    const socket = net.connect({ ...check.target, allowHalfOpen: true, timeout: OUTBOUND_DIAL_TIMEOUT_MS });
    this.hooks.opened(socket);
    socket.once('close', () => this.outbound--);
    const failed = () => {
      socket.destroy();
      refuse('dial failed');
    };
    socket.once('timeout', failed).once('error', failed);
    socket.once('connect', () => {
      socket.off('timeout', failed).off('error', failed).setTimeout(0);
      socket.on('error', () => {}); // 'close' follows
      if (this.ws.readyState !== this.ws.OPEN) return void socket.destroy();
      const stream = new UserStream(clientId, socket, this, this.rules.stream);
      this.streams.set(clientId, stream);
      this.sendControl({ event: 'outbound_result', client_id: clientId, success: true, credits: this.rules.grantCredits });
      stream.start();
    });
  }

  /** Ends the TCP connection without a Close frame, as the server does on a fatal error. */
  drop(why: string): void {
    this.logger.info('backend dropped', { backend: this.id, why });
    this.ws.terminate();
  }

  // ---- StreamLink ----

  sendData(clientId: string, payload: Buffer): void {
    this.send(encodeData(clientId, payload), { kind: 'data', clientId, payload });
  }

  sendCredits(clientId: string, credits: number): void {
    this.sendControl({ event: 'resume_stream', client_id: clientId, credits });
  }

  congested(): boolean {
    return this.ws.bufferedAmount > WEBSOCKET_HIGH_WATER;
  }

  disconnect(clientId: string, why: string): void {
    const stream = this.streams.get(clientId);
    if (!stream) return;
    this.streams.delete(clientId);
    this.logger.debug('stream ended by the relay', { backend: this.id, clientId, why });
    stream.destroy();
    this.sendControl({ event: 'disconnect', client_id: clientId });
  }

  // ---- the WebSocket ----

  private onMessage(data: Buffer, isBinary: boolean): void {
    this.touch();
    if (this.backlog) this.backlog.push([data, isBinary]);
    else this.handle(data, isBinary);
  }

  private handle(data: Buffer, isBinary: boolean): void {
    const { state } = this;
    if (state.stage !== 'registered') {
      if (isBinary) return this.reject('unexpected binary message during handshake');
      this.backlog = [];
      void this.handshake(data.toString('utf8'), state).finally(() => {
        const waiting = this.backlog ?? [];
        this.backlog = undefined;
        this.handleWaiting(waiting);
      });
      return;
    }
    if (!isBinary) return this.onText(data.toString('utf8'));
    const frame = decodeFrame(data);
    this.hooks.frame(this, 'backend', frame);
    if (frame.kind === 'data') this.streams.get(frame.clientId)?.toUser(frame.payload); // unknown id: dropped silently
    else if (frame.kind === 'control') this.onControl(frame.message);
    else this.logger.debug('invalid frame from backend ignored', { backend: this.id, reason: frame.reason });
  }

  private handleWaiting(waiting: Message[]): void {
    for (const [i, message] of waiting.entries()) {
      // A stage 0 token among them started the next check: the rest waits for that one.
      if (this.backlog) return void this.backlog.push(...waiting.slice(i));
      this.handle(...message);
    }
  }

  private async handshake(token: string, state: Exclude<HandshakeState, { stage: 'registered' }>): Promise<void> {
    clearTimeout(this.authTimer);
    try {
      if (state.stage === 'stage0') {
        const stage0 = await verifyToken(token, 'stage0', this.policy);
        const nonce = newNonce();
        this.state = { stage: 'stage1', stage0, nonce };
        this.sendChallenge({ type: 'handshake_challenge', nonce });
        this.authTimer = setTimeout(() => this.reject('stage1 token not received within the auth timeout'), this.rules.authTimeoutMs);
        return;
      }
      const stage1 = await verifyToken(token, 'stage1', this.policy);
      if (stage1.sessionNonce !== state.nonce) throw new HandshakeError(`session nonce mismatch: expected ${state.nonce} got ${stage1.sessionNonce ?? ''}`);
      const difference = claimDifference(state.stage0, stage1);
      if (difference) throw new HandshakeError(`attested token ${difference} from handshake token`);
      this.register({ ...stage1, weight: state.stage0.weight });
    } catch (err) {
      this.reject(refusal(err, this.logger));
    }
  }

  private register(claims: BackendClaims): void {
    this.claims = claims;
    this.state = { stage: 'registered' };
    this.pingTimer = setInterval(() => this.ws.ping(), this.rules.pingIntervalMs);
    this.touch();
    this.scheduleReauth();
    this.hooks.registered(this);
  }

  private reject(reason: string): void {
    if (this.ws.readyState !== this.ws.OPEN) return;
    this.hooks.rejected(this, reason);
    this.logger.info('backend rejected', { backend: this.id, reason });
    if (Buffer.byteLength(reason) > MAX_CLOSE_REASON_BYTES) return this.ws.terminate();
    this.sentCloseCode = POLICY_VIOLATION;
    this.ws.close(POLICY_VIOLATION, reason);
    // The server closes TCP right after its Close frame rather than waiting for the echo.
    this.socket.end();
  }

  private onText(text: string): void {
    if (!this.reauth) {
      this.logger.info('unsolicited text message from backend ignored', { backend: this.id, bytes: text.length });
      return;
    }
    void this.checkReauth(text, this.reauth.nonce);
  }

  private onControl(message: ControlMessage): void {
    const stream = this.streams.get(message.client_id);
    switch (message.event) {
      case 'disconnect':
        if (!stream) return;
        this.streams.delete(message.client_id);
        stream.closeGracefully();
        return;
      case 'resume_stream':
        return stream?.resume(message.credits);
      case 'pause_stream':
        return stream?.pause();
      case 'ping_client':
        if (stream) this.sendControl({ event: 'pong_client', client_id: message.client_id });
        return;
      case 'outbound_connect':
        return this.openOutbound(message.client_id, message.target_addr);
      default:
        this.logger.debug('control message ignored', { backend: this.id, event: message.event });
    }
  }

  // ---- keepalive and reauth ----

  /** Any message or pong resets the read deadline; the backend's own pings do not (§4). */
  private touch(): void {
    if (this.state.stage !== 'registered') return;
    clearTimeout(this.readDeadline);
    this.readDeadline = setTimeout(() => this.drop('read deadline passed'), this.rules.readDeadlineMs);
  }

  private scheduleReauth(): void {
    clearTimeout(this.reauthTimer);
    const interval = this.rules.reauthIntervalSeconds ?? this.claims!.reauthIntervalSeconds;
    if (!(interval > 0)) return;
    const delayMs = (interval + Math.random() * (interval / 5)) * 1000;
    this.reauthTimer = setTimeout(() => {
      const nonce = newNonce();
      const timer = setTimeout(() => this.drop('reauth token not received within the grace period'), this.claims!.reauthGraceSeconds * 1000);
      this.reauth = { nonce, timer };
      this.sendChallenge({ type: 'reauth_challenge', nonce });
    }, delayMs);
  }

  private async checkReauth(token: string, nonce: string): Promise<void> {
    clearTimeout(this.reauth?.timer);
    this.reauth = undefined;
    try {
      const claims = await verifyToken(token, 'reauth', this.policy);
      if (claims.sessionNonce !== nonce) throw new HandshakeError('reauth nonce mismatch');
      const difference = claimDifference(this.claims!, claims);
      if (difference) throw new HandshakeError(`reauth token ${difference} from registered claims`);
      this.claims = { ...claims, weight: this.claims!.weight };
      this.logger.info('backend re-authenticated', { backend: this.id });
      this.scheduleReauth();
    } catch (err) {
      this.drop(refusal(err, this.logger));
    }
  }

  // ---- sending ----

  private sendChallenge(challenge: ServerChallenge): void {
    if (this.ws.readyState === this.ws.OPEN) this.ws.send(JSON.stringify(challenge));
  }

  private sendControl(message: ControlMessage): void {
    const bytes = encodeControl(message);
    // Observers see the message as it went on the wire: empty fields left out.
    this.send(bytes, decodeFrame(bytes));
  }

  private send(bytes: Buffer, frame: Frame): void {
    if (this.ws.readyState !== this.ws.OPEN) return;
    this.ws.send(bytes, { binary: true });
    this.hooks.frame(this, 'relay', frame);
    if (!this.writeStall && this.congested()) this.writeStall = setTimeout(() => this.drop('backend not reading its WebSocket'), this.rules.writeTimeoutMs);
  }

  private drained(): void {
    clearTimeout(this.writeStall);
    this.writeStall = undefined;
    for (const stream of this.streams.values()) stream.pump();
  }

  private onClose(code: number): void {
    this.backlog = undefined;
    for (const timer of [this.authTimer, this.readDeadline, this.reauthTimer, this.reauth?.timer, this.writeStall]) clearTimeout(timer);
    clearInterval(this.pingTimer);
    // Every stream of a lost backend: half-closed at once, fully closed 2 s later, no disconnects.
    for (const stream of this.streams.values()) stream.closeGracefully();
    this.streams.clear();
    this.hooks.closed(this, code);
  }
}

/** The reason a token was refused; anything but a HandshakeError is a bug here, logged as such. */
function refusal(err: unknown, logger: Logger): string {
  if (err instanceof HandshakeError) return err.message;
  logger.error('token check failed', { err });
  return 'internal error checking the token';
}

/** 32 random bytes, unpadded base64url: 43 characters (§1.3). */
function newNonce(): string {
  return randomBytes(32).toString('base64url');
}
