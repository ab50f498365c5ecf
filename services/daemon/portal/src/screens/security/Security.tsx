// Placeholder until this screen is built (issue 9).
import { Page } from '../../ui/Page.js';

export default function Security() {
  return <Page title="Security">Not built yet.</Page>;
}
