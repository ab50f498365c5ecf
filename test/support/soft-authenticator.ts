// A software WebAuthn authenticator (P-256, "none" attestation) for HTTP tests of passkeys:
// it builds the same JSON that @simplewebauthn/browser hands the portal, with a real key pair and
// real signatures, so the server's verification runs in full. The browser tests use Chromium's
// virtual authenticator instead.
import { createHash, generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';
import { isoCBOR } from '@simplewebauthn/server/helpers';

const b64url = (bytes: Uint8Array) => Buffer.from(bytes).toString('base64url');
const sha256 = (data: Uint8Array | string) => createHash('sha256').update(data).digest();

export class SoftAuthenticator {
  private readonly credentials = new Map<string, { privateKey: KeyObject; counter: number; rpId: string }>();

  /** navigator.credentials.create, for PublicKeyCredentialCreationOptionsJSON given at `origin`. */
  create(options: { challenge: string; rp: { id?: string } }, origin: string) {
    const rpId = options.rp.id ?? new URL(origin).hostname;
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const jwk = publicKey.export({ format: 'jwk' });
    const id = randomBytes(16);
    const coseKey = new Map<number, number | Uint8Array>([
      [1, 2], // kty: EC2
      [3, -7], // alg: ES256
      [-1, 1], // crv: P-256
      [-2, Buffer.from(jwk.x!, 'base64url')],
      [-3, Buffer.from(jwk.y!, 'base64url')],
    ]);
    const counter = 1;
    const authData = Buffer.concat([sha256(rpId), Buffer.from([0x45]), u32(counter), Buffer.alloc(16), u16(id.length), id, Buffer.from(isoCBOR.encode(coseKey))]);
    const attestationObject = isoCBOR.encode(new Map<string, unknown>([['fmt', 'none'], ['attStmt', new Map()], ['authData', authData]]) as never);
    this.credentials.set(b64url(id), { privateKey, counter, rpId });
    return {
      id: b64url(id),
      rawId: b64url(id),
      type: 'public-key',
      response: { clientDataJSON: clientData('webauthn.create', options.challenge, origin), attestationObject: b64url(attestationObject), transports: ['internal'] },
      clientExtensionResults: {},
    };
  }

  /** navigator.credentials.get: signs with the first allowed credential this authenticator holds. */
  get(options: { challenge: string; rpId?: string; allowCredentials?: { id: string }[] }, origin: string, tamper: { counter?: number } = {}) {
    const allowed = options.allowCredentials?.map((c) => c.id) ?? [...this.credentials.keys()];
    const id = allowed.find((candidate) => this.credentials.has(candidate));
    if (!id) throw new Error('no matching credential on this authenticator');
    const credential = this.credentials.get(id)!;
    credential.counter = tamper.counter ?? credential.counter + 1;
    const authenticatorData = Buffer.concat([sha256(options.rpId ?? credential.rpId), Buffer.from([0x05]), u32(credential.counter)]);
    const clientDataJSON = clientData('webauthn.get', options.challenge, origin);
    const signature = sign('sha256', Buffer.concat([authenticatorData, sha256(Buffer.from(clientDataJSON, 'base64url'))]), credential.privateKey);
    return {
      id,
      rawId: id,
      type: 'public-key',
      response: { clientDataJSON, authenticatorData: b64url(authenticatorData), signature: b64url(signature) },
      clientExtensionResults: {},
    };
  }
}

function clientData(type: string, challenge: string, origin: string): string {
  return Buffer.from(JSON.stringify({ type, challenge, origin, crossOrigin: false })).toString('base64url');
}

function u32(value: number): Buffer {
  const buffer = Buffer.alloc(4);
  buffer.writeUInt32BE(value);
  return buffer;
}

function u16(value: number): Buffer {
  const buffer = Buffer.alloc(2);
  buffer.writeUInt16BE(value);
  return buffer;
}
