// Placeholder until this screen is built (issue 9).
import { Page } from '../../ui/Page.js';

export default function Remote() {
  return <Page title="Remote">Not built yet.</Page>;
}
