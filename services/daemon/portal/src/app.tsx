// The portal's shell: it learns the device's state and the session, then allows only the screens
// that state permits (the wizard before setup, unlock while locked, sign-in before anything else),
// and routes the rest. Each area of screens is its own lazily loaded chunk.
import { useEffect, useState } from 'preact/hooks';
import { LocationProvider, Route, Router, useLocation } from 'preact-iso/router';
import lazy, { ErrorBoundary } from 'preact-iso/lazy';
import { closeEvents, openEvents, useEvent } from './api/events.js';
import { device, onVaultState, refreshDevice, session, signedIn, type VaultState } from './api/session.js';
import { asApiError } from './api/use-resource.js';
import { wizardInProgress, wizardStepLabel } from './screens/setup/progress.js';
import { Alert } from './ui/Alert.js';
import { Button } from './ui/Button.js';
import { PlainLayout, SignedInLayout } from './ui/Layout.js';
import { Loading } from './ui/Loading.js';
import { Page } from './ui/Page.js';

const Wizard = lazy(() => import('./screens/setup/Wizard.js'));
const Unlock = lazy(() => import('./screens/auth/Unlock.js'));
const Login = lazy(() => import('./screens/auth/Login.js'));
const ResetPassword = lazy(() => import('./screens/auth/ResetPassword.js'));
const StorageFault = lazy(() => import('./screens/auth/StorageFault.js'));
const Dashboard = lazy(() => import('./screens/dashboard/Dashboard.js'));
const AppsList = lazy(() => import('./screens/apps/AppsList.js'));
const Catalog = lazy(() => import('./screens/apps/Catalog.js'));
const Install = lazy(() => import('./screens/apps/Install.js'));
const AppPage = lazy(() => import('./screens/apps/AppPage.js'));
const Services = lazy(() => import('./screens/services/Services.js'));
const Remote = lazy(() => import('./screens/remote/Remote.js'));
const System = lazy(() => import('./screens/system/System.js'));
const Security = lazy(() => import('./screens/security/Security.js'));
const Audit = lazy(() => import('./screens/system/Audit.js'));
const Updates = lazy(() => import('./screens/updates/Updates.js'));

/** Screens a signed-out browser may see while the device is unlocked. */
const SIGNED_OUT_PATHS = ['/login', '/reset'];

/** Where the state sends this path, or undefined when the path may show. */
export function requiredPath(state: VaultState, isSignedIn: boolean, path: string): string | undefined {
  if (state === 'unclaimed') return path === '/setup' ? undefined : '/setup';
  if (state === 'failed') return path === '/fault' ? undefined : '/fault';
  if (state === 'locked') return path === '/unlock' || path === '/reset' ? undefined : '/unlock';
  if (!isSignedIn) return SIGNED_OUT_PATHS.includes(path) ? undefined : '/login';
  if (path === '/setup') return wizardInProgress() ? undefined : '/';
  if (['/login', '/unlock', '/reset', '/fault'].includes(path)) return '/';
  return undefined;
}

function Gate() {
  const location = useLocation();
  const [error, setError] = useState<ReturnType<typeof asApiError>>();
  useEffect(() => {
    refreshDevice().catch((err) => setError(asApiError(err)));
  }, []);
  useEvent<{ state: VaultState; reason?: string }>('vault.state', ({ data }) => onVaultState(data.state, data.reason));
  useEffect(() => (signedIn.value ? openEvents() : closeEvents()), [signedIn.value]);

  const status = device.value;
  const target = status && session.value ? requiredPath(status.state, signedIn.value, location.path) : undefined;
  useEffect(() => {
    if (!target) return;
    // Keep ?next= (the app a person came from) on the way to unlock and sign-in.
    const query = location.url.includes('?') ? location.url.slice(location.url.indexOf('?')) : '';
    location.route(target + (target === '/login' || target === '/unlock' ? query : ''), true);
  }, [target]);

  if (!status || !session.value) {
    return (
      <PlainLayout>
        {error ? (
          <Page title="The device does not answer" wide={false}>
            <Alert error={error} />
            <Button onClick={() => (setError(undefined), refreshDevice().catch((err) => setError(asApiError(err))))}>Try again</Button>
          </Page>
        ) : (
          <Loading what="the device's state" />
        )}
      </PlainLayout>
    );
  }
  if (target) return <PlainLayout>{<Loading what="the next screen" />}</PlainLayout>;
  const routes = (
    <ErrorBoundary onError={(err) => console.error(err)}>
      <Router>
        <Route path="/setup" component={Wizard} />
        <Route path="/unlock" component={Unlock} />
        <Route path="/login" component={Login} />
        <Route path="/reset" component={ResetPassword} />
        <Route path="/fault" component={StorageFault} />
        <Route path="/" component={Dashboard} />
        <Route path="/apps" component={AppsList} />
        <Route path="/apps/catalog" component={Catalog} />
        <Route path="/apps/install" component={Install} />
        <Route path="/apps/:name" component={AppPage} />
        <Route path="/services" component={Services} />
        <Route path="/remote" component={Remote} />
        <Route path="/system" component={System} />
        <Route path="/system/security" component={Security} />
        <Route path="/system/audit" component={Audit} />
        <Route path="/system/updates" component={Updates} />
        <Route default component={NotFound} />
      </Router>
    </ErrorBoundary>
  );
  const plain = !signedIn.value || location.path === '/setup';
  const step = location.path === '/setup' ? wizardStepLabel.value : undefined;
  return plain ? <PlainLayout step={step}>{routes}</PlainLayout> : <SignedInLayout>{routes}</SignedInLayout>;
}

function NotFound() {
  return (
    <Page title="No such page">
      <p>
        This address is not a page of the portal. <a href="/">Go to the dashboard</a>.
      </p>
    </Page>
  );
}

export function App() {
  return (
    <LocationProvider>
      <Gate />
    </LocationProvider>
  );
}
