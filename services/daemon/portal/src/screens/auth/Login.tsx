// Sign-in while the device is unlocked: the admin password (then the second factor, if enrolled).
// The proxy's auth gate sends browsers here with ?next=<the app>; after sign-in they go back there.
import { useLocation } from 'preact-iso/router';
import { nextOnDevice } from '../../api/session.js';
import { Page } from '../../ui/Page.js';
import { PasswordSignIn } from './PasswordSignIn.js';

export default function Login() {
  const { route } = useLocation();
  const next = nextOnDevice(location.search);
  return (
    <Page title="Sign in" wide={false} intro={next ? `Sign in to continue to ${new URL(next).host}.` : 'Sign in with the admin password you chose at setup.'}>
      <PasswordSignIn endpoint="/api/v1/auth/login" submitLabel="Sign in" busyText="Checking the password…" route={(path) => route(path, true)} />
      <p>
        <a href="/reset">Forgot the password? Use the recovery key</a>
      </p>
    </Page>
  );
}
