// Placeholder until this screen is built (issue 9).
import { Page } from '../../ui/Page.js';

export default function Login() {
  return <Page title="Login">Not built yet.</Page>;
}
