// Placeholder until this screen is built (issue 9).
import { Page } from '../../ui/Page.js';

export default function StorageFault() {
  return <Page title="StorageFault">Not built yet.</Page>;
}
