import { chromium, type Browser } from 'playwright-core';

/**
 * Debian's Chromium, headless, as root. The background-networking flags keep it from calling
 * out: this machine has no network beyond the package registries.
 */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}
