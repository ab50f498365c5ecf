// Placeholder until this screen is built (issue 9).
import { Page } from '../../ui/Page.js';

export default function System() {
  return <Page title="System">Not built yet.</Page>;
}
