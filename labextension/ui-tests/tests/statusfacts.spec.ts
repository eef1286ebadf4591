/**
 * The service tab's facts never contradict the state (issue 12, item 5): a
 * running service with a failing probe shows the probe's error once (Health,
 * not again as Progress); once stopped, Health no longer claims a probe result,
 * "Last exit" and "Since" keep what happened, and Memory/CPU say why they are
 * not measured instead of "—". Screenshots in light and dark.
 */
import { expect, IJupyterLabPageFixture, test } from '@jupyterlab/galata';
import * as path from 'path';

import { createService, openService, removeService } from './service-api';

const NAME = `facts-${Date.now().toString(36).slice(-5)}`;
const OUT = process.env.CONDASVC_SCREENSHOT_DIR || path.join(__dirname, '..', 'test-results', 'screenshots');

test.use({ autoGoto: true });

function fact(page: IJupyterLabPageFixture, name: string) {
  return page.locator(`.jp-condasvc-details[data-name="${NAME}"] .jp-condasvc-fact[data-fact="${name}"] dd`);
}

test.describe.serial('service facts', () => {
  test.afterAll(async ({ request }) => {
    await removeService(request, NAME);
  });

  test('no stale or contradictory text, light and dark', async ({ page, request }) => {
    // a TCP probe of a port nobody listens on: unhealthy, and far from its restart threshold
    await createService(request, {
      name: NAME,
      kind: 'script',
      env: 'uienv',
      path: 'ticker.py',
      restart: 'no',
      health_check: {
        type: 'tcp',
        host: '127.0.0.1',
        port: 9,
        interval_sec: 1,
        timeout_sec: 1,
        start_period_sec: 0,
        failure_threshold: 100
      }
    });
    expect((await request.post(`/condasvc/api/services/${NAME}/start`)).ok()).toBeTruthy();

    const view = await openService(page, NAME);
    await expect(view).toHaveAttribute('data-state', 'running', { timeout: 30000 });

    // running, probe failing: the error is in Health, with its count, and not repeated as Progress
    await expect(fact(page, 'health')).toContainText('unhealthy', { timeout: 30000 });
    await expect(fact(page, 'health')).toContainText(/refused/i);
    await expect(fact(page, 'progress')).toHaveCount(0);
    await expect(fact(page, 'last-exit')).toHaveText('none yet');
    for (const which of ['memory', 'cpu']) {
      await expect(fact(page, which)).not.toHaveText('—');
    }
    await page.evaluate(() =>
      document.querySelectorAll<HTMLElement>('.Toastify__close-button').forEach(b => b.click())
    );
    await view.locator('.jp-condasvc-facts').screenshot({ path: path.join(OUT, `facts-running-light.png`) });

    // stopped: no probe result, the stop is the last exit, and when it happened
    expect((await request.post(`/condasvc/api/services/${NAME}/stop`)).ok()).toBeTruthy();
    await expect(view).toHaveAttribute('data-state', /stopped|failed/, { timeout: 30000 });
    await expect(fact(page, 'health')).toHaveText('not checked: the service is not running');
    await expect(fact(page, 'last-exit')).not.toHaveText(/—|none yet/);
    await expect(fact(page, 'since')).not.toHaveText('—');
    await expect(fact(page, 'memory')).toHaveText('not running');
    await expect(fact(page, 'cpu')).toHaveText('not running');

    // a reload (the tab has seen nothing): the latest run still tells the last exit and since
    await page.reload();
    await openService(page, NAME);
    await expect(fact(page, 'last-exit')).not.toHaveText(/—|none yet/, { timeout: 30000 });
    await expect(fact(page, 'since')).not.toHaveText('—');
    await page.evaluate(() =>
      document.querySelectorAll<HTMLElement>('.Toastify__close-button').forEach(b => b.click())
    );
    await view.locator('.jp-condasvc-facts').screenshot({ path: path.join(OUT, `facts-stopped-light.png`) });

    await page.theme.setDarkTheme();
    expect((await request.post(`/condasvc/api/services/${NAME}/start`)).ok()).toBeTruthy();
    await expect(fact(page, 'health')).toContainText('unhealthy', { timeout: 30000 });
    await expect(fact(page, 'progress')).toHaveCount(0);
    // the stop before is still the last exit while the new run goes
    await expect(fact(page, 'last-exit')).toContainText('SIGTERM');
    await view.locator('.jp-condasvc-facts').screenshot({ path: path.join(OUT, `facts-running-dark.png`) });
    expect((await request.post(`/condasvc/api/services/${NAME}/stop`)).ok()).toBeTruthy();
    await expect(fact(page, 'health')).toHaveText('not checked: the service is not running', { timeout: 30000 });
    await view.locator('.jp-condasvc-facts').screenshot({ path: path.join(OUT, `facts-stopped-dark.png`) });
    await page.theme.setLightTheme();
  });
});
