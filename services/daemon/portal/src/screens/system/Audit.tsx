// Placeholder until this screen is built (issue 9).
import { Page } from '../../ui/Page.js';

export default function Audit() {
  return <Page title="Audit">Not built yet.</Page>;
}
