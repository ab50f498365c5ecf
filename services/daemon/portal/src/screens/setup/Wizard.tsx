// Placeholder until this screen is built (issue 9).
import { Page } from '../../ui/Page.js';

export default function Wizard() {
  return <Page title="Wizard">Not built yet.</Page>;
}
