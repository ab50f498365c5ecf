// Placeholder until this screen is built (issue 9).
import { Page } from '../../ui/Page.js';

export default function Install() {
  return <Page title="Install">Not built yet.</Page>;
}
