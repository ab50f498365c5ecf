// Messages for people: what a failed WebAuthn ceremony means, and the daemon's field messages as sentences.
// The DOMException names mean different things to act on (cancelled, not allowed here, already registered).
export function passkeyProblem(err: unknown): string | undefined {
  // @simplewebauthn/browser's WebAuthnError keeps the DOMException's name.
  const name = (err as { name?: string } | undefined)?.name;
  if (name === 'NotAllowedError' || name === 'AbortError') return 'The passkey was not used: the request was cancelled or timed out. Try again.';
  if (name === 'InvalidStateError') return 'This authenticator already holds a passkey for this device.';
  if (name === 'SecurityError') return 'The browser does not allow passkeys on this address. Open the portal by its name over https (or at http://localhost).';
  if (name === 'NotSupportedError') return 'This browser or authenticator does not support passkeys.';
  return undefined;
}

/** The daemon's messages follow a field name ("code: wrong code"); shown on their own, they start a sentence. */
export function sentence(text: string | undefined): string | undefined {
  return text && text[0]!.toUpperCase() + text.slice(1);
}
