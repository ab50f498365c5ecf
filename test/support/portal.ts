// What every portal browser test shares: a set-up daemon with a signed-in Chromium page, and
// checkScreen, which holds each screen to the issue's quality bar: no serious or critical axe-core
// violation (light and dark), no sideways scroll at 360, 390 and 1280 px, and screenshots at 390 and
// 1280 px in the artifacts folder for a person to look at.
import { mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { AxeBuilder } from '@axe-core/playwright';
import type { Browser, Page } from 'playwright-core';
import { REPO_ROOT } from '../../image/bundle.js';
import { ApiSession } from './api-session.js';
import { launchChromium } from './browser.js';
import { startTestDaemon, startTestProxy, waitFor, type ServiceProcess } from './processes.js';

export const SCREENSHOT_DIR = process.env.PICCOLO_SCREENSHOT_DIR ?? path.join(REPO_ROOT, 'build', 'test-artifacts', 'portal');
export const CHECK_WIDTHS = [360, 390, 1280] as const;
export const SCREENSHOT_WIDTHS = [390, 1280] as const;
export const TEST_PASSWORD = 'Portal-Test-Pass-9';

export interface ScreenProblems {
  axe: string[];
  overflow: string[];
}

/**
 * Checks the screen the page shows now, then puts the viewport back. Throws with every problem
 * found, so one failing screen names all of its faults at once.
 */
export async function checkScreen(page: Page, name: string): Promise<void> {
  const problems = await screenProblems(page, name);
  const lines = [...problems.axe, ...problems.overflow];
  if (lines.length) throw new Error(`screen "${name}":\n  ${lines.join('\n  ')}`);
}

export async function screenProblems(page: Page, name: string): Promise<ScreenProblems> {
  const original = page.viewportSize() ?? { width: 1280, height: 800 };
  const problems: ScreenProblems = { axe: [], overflow: [] };
  mkdirSync(SCREENSHOT_DIR, { recursive: true });
  try {
    for (const width of CHECK_WIDTHS) {
      await page.setViewportSize({ width, height: 800 });
      await settle(page);
      const overflow = await sidewaysOverflow(page);
      if (overflow) problems.overflow.push(`${width} px: scrolls sideways by ${overflow.by} px (${overflow.culprits.join(', ') || 'no single element'})`);
      if ((SCREENSHOT_WIDTHS as readonly number[]).includes(width)) {
        await page.screenshot({ path: path.join(SCREENSHOT_DIR, `${name}-${width}.png`), fullPage: true });
      }
    }
    for (const [scheme, width] of [['light', 1280], ['dark', 390]] as const) {
      await page.emulateMedia({ colorScheme: scheme });
      await page.setViewportSize({ width, height: 800 });
      await settle(page);
      const result = await new AxeBuilder({ page }).withTags(['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice']).analyze();
      for (const violation of result.violations) {
        if (violation.impact !== 'serious' && violation.impact !== 'critical') continue;
        const where = violation.nodes.slice(0, 3).map((node) => `${node.target.join(' ')}${node.failureSummary ? ` (${node.failureSummary.split('\n').slice(1).join(' ').trim()})` : ''}`);
        problems.axe.push(`axe ${scheme} ${width} px: ${violation.id} [${violation.impact}] ${violation.help}: ${where.join('; ')}`);
      }
    }
  } finally {
    await page.emulateMedia({ colorScheme: 'light' });
    await page.setViewportSize(original);
  }
  return problems;
}

async function settle(page: Page): Promise<void> {
  await page.evaluate(() => new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve))));
}

/** How far the page scrolls sideways, and the widest elements that stick out. */
async function sidewaysOverflow(page: Page): Promise<{ by: number; culprits: string[] } | undefined> {
  return page.evaluate(() => {
    const root = document.scrollingElement ?? document.documentElement;
    const by = root.scrollWidth - root.clientWidth;
    if (by <= 0) return undefined;
    const culprits: string[] = [];
    for (const element of Array.from(document.body.querySelectorAll('*'))) {
      const box = element.getBoundingClientRect();
      if (box.right > root.clientWidth + 1 && culprits.length < 5) {
        culprits.push(`${element.tagName.toLowerCase()}${element.id ? '#' + element.id : ''}${element.className && typeof element.className === 'string' ? '.' + element.className.split(' ').join('.') : ''}`);
      }
    }
    return { by, culprits };
  });
}

/** Claims and sets up the device over the API (the wizard test does it in the browser). */
export async function setUpDevice(base: string, stateDir: string, password = TEST_PASSWORD): Promise<ApiSession> {
  const api = new ApiSession(base);
  const claimCode = readFileSync(path.join(stateDir, 'claim-code'), 'utf8').trim();
  const claim = await api.call('POST', '/api/v1/setup/claim', { claimCode });
  if (claim.status !== 200) throw new Error(`claim failed: ${claim.status} ${JSON.stringify(claim.body)}`);
  const setup = await api.call('POST', '/api/v1/setup', { setupToken: claim.body.setupToken, password, recoveryKeySaved: true });
  if (setup.status !== 201) throw new Error(`setup failed: ${setup.status} ${JSON.stringify(setup.body)}`);
  return api;
}

/** setUpDevice, then waits for the app manager, which starts right after the unlock (apps answer 503 until then). */
export async function setUpWithApps(base: string, stateDir: string, password = TEST_PASSWORD): Promise<ApiSession> {
  const api = await setUpDevice(base, stateDir, password);
  await waitFor(async () => ((await api.call('GET', '/api/v1/apps')).status === 200 ? true : undefined), 30_000, 'apps available');
  return api;
}

/** A test daemon on the given Podman, set up over the API, once its apps API answers. */
export async function startAppsDaemon(stateDir: string, podmanSocket: string): Promise<{ daemon: ServiceProcess; api: ApiSession }> {
  const { proc: daemon, api: base } = await startTestDaemon(stateDir, { PICCOLO_PODMAN_SOCKET: podmanSocket });
  return { daemon, api: await setUpWithApps(base, stateDir) };
}

/** A Chromium page signed in as `api` is: its session cookie is given to the browser. */
export async function signedInPage(browser: Browser, base: string, api: ApiSession): Promise<Page> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const [name, value] = api.cookie.split('=') as [string, string];
  await context.addCookies([{ name, value, url: base, httpOnly: true, sameSite: 'Strict' }]);
  const page = await context.newPage();
  page.on('pageerror', (err) => console.error(`page error: ${err.message}`));
  return page;
}

export interface DeviceBehindProxy {
  daemon: ServiceProcess;
  proxy: ServiceProcess;
  /** The portal's URL through the proxy, as a browser on the network reaches it. */
  portal: string;
  /** Signed in by setup; the apps API answers. */
  api: ApiSession;
}

/**
 * The daemon on a test Podman behind the real proxy, claimed and set up over the API, once its apps
 * API answers. `dir` holds the sockets and the proxy's certificates; `stateDir` the daemon's state.
 */
export async function startDeviceBehindProxy(dir: string, stateDir: string, podmanSocket: string, env: { daemon?: Record<string, string>; proxy?: Record<string, string> } = {}): Promise<DeviceBehindProxy> {
  const internalSocket = path.join(dir, 'internal.sock');
  const { proc: daemon } = await startTestDaemon(stateDir, { PICCOLO_PODMAN_SOCKET: podmanSocket, PICCOLO_DAEMON_INTERNAL_SOCKET: internalSocket, ...env.daemon });
  const { proc: proxy, portal } = await startTestProxy(internalSocket, dir, env.proxy);
  await waitFor(async () => ((await fetch(`${portal}/api/v1/version`).catch(() => undefined))?.ok ? true : undefined), 20_000, 'the portal through the proxy');
  const api = await setUpWithApps(portal, stateDir);
  return { daemon, proxy, portal, api };
}

export { launchChromium };
