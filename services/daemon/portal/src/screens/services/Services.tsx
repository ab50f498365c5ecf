// Placeholder until this screen is built (issue 9).
import { Page } from '../../ui/Page.js';

export default function Services() {
  return <Page title="Services">Not built yet.</Page>;
}
