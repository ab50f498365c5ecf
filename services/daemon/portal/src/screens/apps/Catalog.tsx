// Placeholder until this screen is built (issue 9).
import { Page } from '../../ui/Page.js';

export default function Catalog() {
  return <Page title="Catalog">Not built yet.</Page>;
}
