/**
 * Screenshots for the README (light and dark): the sidebar with a service
 * view, the form with its unit preview, and the log viewer. Written to
 * $CONDASVC_SCREENSHOT_DIR (docs/screenshots when run by scripts/ui-screenshots),
 * else to test-results/screenshots.
 */
import { expect, IJupyterLabPageFixture, test } from '@jupyterlab/galata';
import type { APIRequestContext } from '@playwright/test';
import * as path from 'path';

import { createService as create } from './service-api';

const OUT = process.env.CONDASVC_SCREENSHOT_DIR || path.join(__dirname, '..', 'test-results', 'screenshots');
const suffix = Date.now().toString(36).slice(-4);
const names = {
  api: `inference-api-${suffix}`,
  report: `nightly-report-${suffix}`,
  crash: `etl-worker-${suffix}`
};

async function setUp(request: APIRequestContext): Promise<void> {
  await create(request, {
    name: names.api,
    kind: 'script',
    env: 'uienv',
    path: 'ticker.py',
    args: ['--port', '8080'],
    description: 'Model inference API',
    environment: { API_KEY: 's3cret' },
    restart: 'always'
  });
  await create(request, {
    name: names.report,
    kind: 'notebook',
    env: 'uienv',
    path: 'analysis.ipynb',
    schedule: 'daily',
    enabled: true,
    parameters: { alpha: 0.5 }
  });
  await create(request, { name: names.crash, kind: 'script', env: 'other', path: 'crash.py', restart: 'no' });
  expect((await request.post(`/condasvc/api/services/${names.api}/start`)).ok()).toBeTruthy();
}

async function shots(page: IJupyterLabPageFixture, request: APIRequestContext, theme: 'light' | 'dark'): Promise<void> {
  await page.sidebar.openTab('jp-condasvc-panel');
  await request.post(`/condasvc/api/services/${names.crash}/start`);
  await expect(page.locator(`.jp-condasvc-item[data-name="${names.crash}"]`)).toHaveAttribute('data-state', 'failed', {
    timeout: 30000
  });
  await expect(page.locator(`.jp-condasvc-item[data-name="${names.api}"]`)).toHaveAttribute('data-state', 'running');
  // Dismiss toasts so they do not cover the pictures.
  await page.evaluate(() =>
    document
      .querySelectorAll<HTMLElement>('.Toastify__close-button, .jp-Notification-Toast-Close')
      .forEach(b => b.click())
  );

  // The service view with its live log.
  await page.locator(`.jp-condasvc-item[data-name="${names.api}"] .jp-condasvc-item-name`).click();
  const view = page.locator(`.jp-condasvc-details[data-name="${names.api}"]`);
  await expect(view.locator('.jp-condasvc-logs-scroller')).toContainText('tick 4', { timeout: 30000 });
  await view.locator('input.jp-condasvc-search').fill('tick 3');
  await expect(view.locator('mark.jp-condasvc-mark').first()).toBeVisible();
  await page.evaluate(() => document.querySelectorAll<HTMLElement>('.Toastify__close-button').forEach(b => b.click()));
  await page.screenshot({ path: path.join(OUT, `sidebar-and-logs-${theme}.png`) });
  await view.locator('.jp-condasvc-logs').screenshot({ path: path.join(OUT, `log-viewer-${theme}.png`) });

  // The form with its preview.
  await page.locator('.jp-condasvc-panel-header').getByTitle('New service').click();
  const form = page.locator('.jp-condasvc-form').last();
  await form.locator('input[name="name"]').fill('pytorch-inference-api-v1');
  await form.locator('input[name="path"]').fill('ticker.py');
  await form.locator('select[name="env"]').selectOption('uienv');
  await form.locator('input[name="args"]').fill('--port 8080');
  await form.locator('input[name="memory_max"]').fill('4G');
  await form.getByRole('button', { name: 'Add variable' }).click();
  await form.getByLabel('Variable name').fill('API_KEY');
  await form.getByLabel('Variable value').fill('s3cret');
  await expect(form.locator('.jp-condasvc-form-preview pre').first()).toContainText('MemoryMax=4G');
  await page.evaluate(() => document.querySelectorAll('.jp-condasvc-editor').forEach(e => e.scrollTo(0, 0)));
  await page.screenshot({ path: path.join(OUT, `form-${theme}.png`) });
  await form.getByRole('button', { name: 'Cancel' }).click();
  await page.locator('.jp-Dialog').getByRole('button', { name: 'Discard' }).click(); // the form was filled in
}

test.describe.serial('screenshots', () => {
  // A minute of pictures: only when asked for (scripts/test does not).
  test.skip(!process.env.CONDASVC_SCREENSHOT_DIR, 'set CONDASVC_SCREENSHOT_DIR to take the screenshots');

  test.afterAll(async ({ request }) => {
    for (const name of Object.values(names)) {
      await request.delete(`/condasvc/api/services/${name}`).catch(() => undefined);
    }
  });

  test('light and dark', async ({ page, request }) => {
    await setUp(request);
    await shots(page, request, 'light');
    await page.theme.setDarkTheme();
    await shots(page, request, 'dark');
    await page.theme.setLightTheme();
  });
});
