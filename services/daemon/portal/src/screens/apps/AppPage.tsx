// Placeholder until this screen is built (issue 9).
import { Page } from '../../ui/Page.js';

export default function AppPage() {
  return <Page title="AppPage">Not built yet.</Page>;
}
