// Placeholder until this screen is built (issue 9).
import { Page } from '../../ui/Page.js';

export default function AppsList() {
  return <Page title="AppsList">Not built yet.</Page>;
}
