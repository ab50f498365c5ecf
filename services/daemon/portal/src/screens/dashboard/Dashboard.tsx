// Placeholder until this screen is built (issue 9).
import { Page } from '../../ui/Page.js';

export default function Dashboard() {
  return <Page title="Dashboard">Not built yet.</Page>;
}
