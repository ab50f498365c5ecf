// The device CA's certificate: download it and install it once per device you use, so browsers
// trust this device's HTTPS without a warning. The fingerprint lets a person check that the file
// is the one this device made. The certificate arrives from the proxy a few seconds after boot.
import { api } from '../../api/client.js';
import { useResource } from '../../api/use-resource.js';
import type { CaInfo } from '../../../../system/types.js';
import { formatTime } from '../../format.js';
import { Alert } from '../../ui/Alert.js';
import { Button, LinkButton } from '../../ui/Button.js';
import { Loading } from '../../ui/Loading.js';
import { Card, Facts } from '../../ui/Page.js';

const INSTRUCTIONS: [string, string][] = [
  ['Windows', 'Open piccolo-ca.crt, choose Install Certificate, then Local Machine, and place it in "Trusted Root Certification Authorities".'],
  ['macOS', 'Open piccolo-ca.crt: Keychain Access adds it to the System keychain. Double-click it there, open Trust, and set "When using this certificate" to Always Trust.'],
  ['iOS and iPadOS', 'Open the download in Safari and allow the profile. Install it in Settings → General → VPN & Device Management, then turn it on in Settings → General → About → Certificate Trust Settings.'],
  ['Android', 'Settings → Security → More security settings → Encryption & credentials → Install a certificate → CA certificate, then pick piccolo-ca.crt (the menu names vary by maker).'],
  ['Linux', 'Copy it to /usr/local/share/ca-certificates/piccolo-ca.crt and run "sudo update-ca-certificates" (Debian, Ubuntu); on Fedora use /etc/pki/ca-trust/source/anchors and "sudo update-ca-trust".'],
  ['Firefox (any system)', 'Firefox keeps its own list: Settings → Privacy & Security → Certificates → View Certificates → Authorities → Import, and tick "Trust this CA to identify websites".'],
];

export function DeviceCa() {
  const ca = useResource((signal) => api.get<CaInfo>('/api/v1/system/ca', { signal }));
  return (
    <Card title="Device certificate" id="ca">
      <p>This device signs its own HTTPS certificates. Install its certificate authority on each computer and phone you use, and browsers trust the device without a warning.</p>
      {ca.data ? (
        <>
          <Facts
            items={[
              ['Fingerprint (SHA-256)', <span class="mono fingerprint" data-testid="ca-fingerprint">{ca.data.sha256Fingerprint}</span>],
              ['Subject', ca.data.subject],
              ['Valid until', formatTime(ca.data.notAfter)],
            ]}
          />
          <div class="actions">
            <LinkButton href="/api/v1/system/ca.crt" download="piccolo-ca.crt" variant="primary">
              Download the certificate
            </LinkButton>
          </div>
        </>
      ) : ca.error ? (
        <Alert error={ca.error.status === 404 ? `Not available yet: ${ca.error.message}` : `Could not load the certificate: ${ca.error.message}`}>
          <Button variant="secondary" onClick={ca.reload}>
            Retry
          </Button>
        </Alert>
      ) : (
        <Loading what="the device certificate" />
      )}
      <h3 class="howto-title">How to install it</h3>
      <div class="howto">
        {INSTRUCTIONS.map(([system, text]) => (
          <details key={system}>
            <summary>{system}</summary>
            <p>{text}</p>
          </details>
        ))}
      </div>
      <p class="muted">After installing, check that the fingerprint your system shows matches the one above.</p>
    </Card>
  );
}
