// The relay's tokens (§1.2 of the protocol note): stage 0 before the challenge, stage 1 bound to
// the server's nonce, and the same for each re-authentication. HS256 through jose, keyed with the
// device secret's UTF-8 bytes. The claims of one session never change: the server compares stage 1
// and every reauth token with stage 0.
import { SignJWT } from 'jose';
import type { TunnelClaims } from './protocol.js';

export const TOKEN_TTL_SECONDS = 30;

export interface TokenIssuerOptions {
  deviceSecret: string;
  /** Informational for the server: which device this is. */
  subject: string;
  /** Every public name this session declares. */
  hostnames: readonly string[];
  now?: () => number;
}

export class TokenIssuer {
  private readonly key: Uint8Array;

  constructor(private readonly options: TokenIssuerOptions) {
    this.key = new TextEncoder().encode(options.deviceSecret);
  }

  /** Sent before the challenge: the server rejects it once older than its TTL. */
  stage0(): Promise<string> {
    return this.sign({ handshake_max_age_seconds: TOKEN_TTL_SECONDS });
  }

  /** The answer to handshake_challenge. */
  stage1(nonce: string): Promise<string> {
    return this.sign({ session_nonce: nonce });
  }

  /** The answer to reauth_challenge: stage 1's claims with the new nonce. */
  reauth(nonce: string): Promise<string> {
    return this.stage1(nonce);
  }

  private sign(extra: Partial<TunnelClaims>): Promise<string> {
    const iat = Math.floor((this.options.now ?? Date.now)() / 1000);
    const claims = { hostnames: [...this.options.hostnames], weight: 1, ...extra };
    return new SignJWT(claims)
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setIssuer('authorizer')
      .setAudience('nexus')
      .setSubject(this.options.subject)
      .setIssuedAt(iat)
      .setExpirationTime(iat + TOKEN_TTL_SECONDS)
      .sign(this.key);
  }
}
