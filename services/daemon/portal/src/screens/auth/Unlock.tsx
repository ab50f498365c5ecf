// Placeholder until this screen is built (issue 9).
import { Page } from '../../ui/Page.js';

export default function Unlock() {
  return <Page title="Unlock">Not built yet.</Page>;
}
