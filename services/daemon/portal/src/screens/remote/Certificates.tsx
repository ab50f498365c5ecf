// The certificates the device obtained for its remote names (ACME), with Renew for each. The
// request answers once the new certificate is stored (seconds), so the button stays busy until then.
import { useState } from 'preact/hooks';
import type { CertificateInfo } from '../../../../remote/acme/certificate-manager.js';
import { api, type ApiError } from '../../api/client.js';
import { asApiError } from '../../api/use-resource.js';
import { formatTime } from '../../format.js';
import { Alert } from '../../ui/Alert.js';
import { Badge } from '../../ui/Badge.js';
import { Button } from '../../ui/Button.js';

export function expiry(notAfter: string, now = Date.now()): string {
  const days = Math.round((Date.parse(notAfter) - now) / 86_400_000);
  return `${notAfter.slice(0, 10)} (${days >= 0 ? `in ${days} day${days === 1 ? '' : 's'}` : 'expired'})`;
}

export function Certificates({ certificates, enabled, onRenewed }: { certificates: CertificateInfo[]; enabled: boolean; onRenewed: (certificates: CertificateInfo[]) => void }) {
  const [renewing, setRenewing] = useState<string>();
  const [error, setError] = useState<{ name: string; error: ApiError }>();
  async function renew(name: string) {
    setRenewing(name);
    setError(undefined);
    try {
      onRenewed((await api.post<{ certificates: CertificateInfo[] }>('/api/v1/remote/certificates/renew', { name })).certificates);
    } catch (err) {
      setError({ name, error: asApiError(err) });
    } finally {
      setRenewing(undefined);
    }
  }
  if (!certificates.length) {
    return <p class="muted">{enabled ? 'No certificates yet: the device requests them now.' : 'No certificates yet. The device requests them once remote access is on.'}</p>;
  }
  const sorted = [...certificates].sort((a, b) => a.name.localeCompare(b.name));
  return (
    <>
      <table class="stack-table certs">
        <caption class="offscreen">Certificates</caption>
        <thead>
          <tr>
            <th scope="col">Name</th>
            <th scope="col">Issuer</th>
            <th scope="col">Expires</th>
            <th scope="col">State</th>
            <th scope="col">Last error</th>
            <th scope="col">
              <span class="offscreen">Actions</span>
            </th>
          </tr>
        </thead>
        <tbody>
          {sorted.map((cert) => (
            <tr key={cert.name} data-name={cert.name}>
              <td data-label="Name" class="mono">
                {cert.name}
              </td>
              <td data-label="Issuer">{cert.issuer ?? '—'}</td>
              <td data-label="Expires">{cert.notAfter ? expiry(cert.notAfter) : '—'}</td>
              <td data-label="State">
                <Badge state={cert.state} />
              </td>
              <td data-label="Last error">
                {cert.lastError}
                {cert.nextAttemptAt && <span class="muted"> Next try {formatTime(cert.nextAttemptAt)}</span>}
              </td>
              <td>
                <Button variant="secondary" busy={renewing === cert.name} disabled={renewing !== undefined} onClick={() => void renew(cert.name)}>
                  Renew<span class="offscreen"> {cert.name}</span>
                </Button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {error && <Alert error={`Renewing ${error.name} failed: ${error.error.message}`} />}
      {renewing && (
        <p class="muted" role="status">
          Renewing {renewing}: waiting for the certificate authority…
        </p>
      )}
    </>
  );
}
