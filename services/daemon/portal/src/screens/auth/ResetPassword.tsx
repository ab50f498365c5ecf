// Placeholder until this screen is built (issue 9).
import { Page } from '../../ui/Page.js';

export default function ResetPassword() {
  return <Page title="ResetPassword">Not built yet.</Page>;
}
