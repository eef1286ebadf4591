/**
 * The JupyterLab experience against a real server and the real user manager:
 * create a script service through the form and watch it run, follow its log,
 * stop it; a field error shown inline; run-as-service from an open notebook
 * prefilled with its kernel's env; a failing service raises a notification.
 */
import { expect, galata, IJupyterLabPageFixture, test } from '@jupyterlab/galata';
import type { APIRequestContext } from '@playwright/test';

const suffix = Date.now().toString(36).slice(-5);
const TICKER = `ticker-${suffix}`;
const CRASHER = `crasher-${suffix}`;
const NOTEBOOK = `report-${suffix}`;
const LOOPER = `looper-${suffix}`;
const PANEL = 'jp-condasvc-panel';

test.use({ autoGoto: true });

async function openPanel(page: IJupyterLabPageFixture): Promise<void> {
  await page.sidebar.openTab(PANEL);
  await expect(page.locator('.jp-condasvc-panel')).toBeVisible();
}

async function newServiceForm(page: IJupyterLabPageFixture) {
  await openPanel(page);
  await page.locator('.jp-condasvc-panel-header').getByTitle('New service').click();
  const form = page.locator('.jp-condasvc-form').last();
  await expect(form).toBeVisible();
  // environments are loaded
  await expect(form.locator('select[name="env"] option', { hasText: 'uienv' })).toHaveCount(1);
  return form;
}

async function removeService(request: APIRequestContext, name: string): Promise<void> {
  await request.delete(`/condasvc/api/services/${name}`).catch(() => undefined);
}

test.describe.serial('services', () => {
  test.afterAll(async ({ request }) => {
    await removeService(request, TICKER);
    await removeService(request, CRASHER);
    await removeService(request, NOTEBOOK);
    await removeService(request, LOOPER);
  });

  test('create a script service through the form, watch it run, follow its log, stop it', async ({ page }) => {
    // the status bar item opens the panel
    await expect(page.locator('.jp-condasvc-status-item')).toContainText('running');
    await page.locator('.jp-condasvc-status-item').click();
    await expect(page.locator('.jp-condasvc-panel-header')).toContainText('Services');
    // with no services yet, the panel explains what a service is and offers to make one
    await expect(page.locator('.jp-condasvc-summary, .jp-condasvc-empty p').first()).toBeVisible();
    if ((await page.locator('.jp-condasvc-item').count()) === 0) {
      await expect(page.locator('.jp-condasvc-empty')).toContainText('systemd user service');
      await expect(page.locator('.jp-condasvc-empty button', { hasText: 'New service' })).toBeVisible();
    }
    const form = await newServiceForm(page);
    await form.locator('input[name="name"]').fill(TICKER);
    await form.locator('input[name="path"]').fill('ticker.py');
    await form.locator('select[name="env"]').selectOption('uienv');
    // the live unit preview shows the env's interpreter
    await expect(form.locator('.jp-condasvc-form-preview pre').first()).toContainText('envs/uienv/bin/python');
    await form.locator('button[type="submit"]').click();

    const view = page.locator(`.jp-condasvc-details[data-name="${TICKER}"]`);
    await expect(view).toBeVisible();
    await expect(view).toHaveAttribute('data-state', 'running', { timeout: 30000 });
    // the sidebar shows it running, live
    await openPanel(page);
    await expect(page.locator(`.jp-condasvc-item[data-name="${TICKER}"]`)).toHaveAttribute('data-state', 'running');

    // a log line appears while following
    await expect(view.locator('.jp-condasvc-follow-state')).toHaveAttribute('data-state', 'live');
    await expect(view.locator('.jp-condasvc-logs-scroller')).toContainText('tick 3', { timeout: 30000 });
    // ANSI colours are rendered, not printed
    await expect(view.locator('.jp-condasvc-logs-scroller .ansi-green-fg').first()).toHaveText('green');
    await expect(view.locator('.jp-condasvc-logs-scroller')).not.toContainText('[32m');

    // search highlights
    await view.locator('input.jp-condasvc-search').fill('tick 2');
    await expect(view.locator('mark.jp-condasvc-mark').first()).toHaveText('tick 2');
    await view.locator('input.jp-condasvc-search').fill('');

    await view.getByRole('button', { name: 'Stop', exact: true }).click();
    await expect(view).toHaveAttribute('data-state', 'stopped', { timeout: 30000 });
    await expect(page.locator(`.jp-condasvc-item[data-name="${TICKER}"]`)).toHaveAttribute('data-state', 'stopped');
  });

  test('edit a service: the form opens filled in, and saving changes its command line', async ({ page }) => {
    await openPanel(page);
    await page.locator(`.jp-condasvc-item[data-name="${TICKER}"] .jp-condasvc-item-name`).click();
    const view = page.locator(`.jp-condasvc-details[data-name="${TICKER}"]`);
    await view.getByRole('button', { name: 'Edit', exact: true }).click();
    const form = page.locator('.jp-condasvc-form').last();
    await expect(form.locator('input[name="name"]')).toHaveValue(TICKER);
    await expect(form.locator('input[name="name"]')).toBeDisabled();
    await expect(form.locator('input[name="path"]')).toHaveValue('ticker.py');
    await form.locator('input[name="args"]').fill('--rate "2 per second"');
    await expect(form.locator('.jp-condasvc-form-preview pre').first()).toContainText('"2 per second"');
    await form.getByRole('button', { name: 'Save' }).click();
    await expect(view.locator('[data-fact="command"]')).toContainText("--rate '2 per second'"); // as a shell would take it
  });

  test('the log viewer stays small and quick with 100 000 lines', async ({ page }) => {
    await page.evaluate(async name => {
      await window.jupyterapp.commands.execute('condasvc:open-service', { name });
    }, TICKER);
    const view = page.locator(`.jp-condasvc-details[data-name="${TICKER}"]`);
    await expect(view.locator('.jp-condasvc-logs-meta')).toContainText('lines');
    const timing = await page.evaluate(async name => {
      type Follower = { handle(m: unknown): void; buffer: { length: number } };
      const widget = Array.from(window.jupyterapp.shell.widgets('main')).find(
        w => w.id === `jp-condasvc-service-${name}`
      ) as unknown as {
        content: { follower: Follower };
      };
      const follower = widget.content.follower;
      const base = Date.now() * 1000;
      const entries = Array.from({ length: 100000 }, (_, i) => ({
        cursor: `fake-${i}`,
        realtime: new Date(base / 1000).toISOString(),
        realtime_usec: base + i,
        priority: i % 50 ? 6 : 3,
        pid: 1,
        identifier: 'x',
        source: 'service',
        message: `fake line ${i} \x1b[33mwarm\x1b[0m`
      }));
      const frame = () => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
      const t0 = performance.now();
      follower.handle({ type: 'entries', entries, cursor: 'fake-99999' });
      await frame();
      const appended = performance.now() - t0;
      const scroller = document.querySelector(
        `.jp-condasvc-details[data-name="${name}"] .jp-condasvc-logs-scroller`
      ) as HTMLElement;
      const t1 = performance.now();
      scroller.scrollTop = scroller.scrollHeight / 2;
      scroller.dispatchEvent(new Event('scroll'));
      await frame();
      const scrolled = performance.now() - t1;
      return {
        appended,
        scrolled,
        rows: scroller.querySelectorAll('.jp-condasvc-logline').length,
        total: follower.buffer.length
      };
    }, TICKER);
    test.info().annotations.push({ type: '100k lines', description: JSON.stringify(timing) });
    process.stdout.write(`log viewer, 100 000 lines: ${JSON.stringify(timing)}\n`);
    expect(timing.total).toBeGreaterThanOrEqual(100000);
    expect(timing.rows).toBeLessThan(300); // only what is on screen, plus a little
    expect(timing.scrolled).toBeLessThan(1000);
    await expect(view.locator('.jp-condasvc-logs-scroller')).toContainText(/fake line 5\d{4}/);
  });

  test('a field error from the server is shown next to the field', async ({ page }) => {
    const form = await newServiceForm(page);
    await form.locator('input[name="name"]').fill(`bad-${suffix}`);
    await form.locator('input[name="path"]').fill('ticker.py');
    await form.locator('input[name="memory_max"]').fill('lots');
    await form.locator('button[type="submit"]').click();
    const error = form.locator('.jp-condasvc-field-error[data-field="memory_max"]');
    await expect(error).toBeVisible();
    await expect(error).toContainText('memory_max');
    await expect(form.locator('.jp-condasvc-row[data-field="memory_max"]')).toHaveClass(/jp-mod-error/);
    // fixing the field clears the error
    await form.locator('input[name="memory_max"]').fill('512M');
    await expect(error).toHaveCount(0);
    await page.locator('.jp-condasvc-form').last().getByRole('button', { name: 'Cancel' }).click();
  });

  test('run as service from an open notebook, prefilled with its kernel environment', async ({ page }) => {
    await page.evaluate(async () => {
      await window.jupyterapp.commands.execute('docmanager:open', { path: 'analysis.ipynb' });
    });
    await expect(page.locator('.jp-NotebookPanel .jp-Notebook')).toBeVisible();
    // the kernel of the notebook is uienv's python
    await expect(page.locator('.jp-Toolbar-kernelName')).toContainText('uienv', { timeout: 30000 });
    await page
      .waitForFunction(
        () => {
          const status = document.querySelector('.jp-Notebook-ExecutionIndicator');
          return status?.getAttribute('data-status') === 'idle';
        },
        undefined,
        { timeout: 60000 }
      )
      .catch(() => undefined);
    await page.locator('.jp-condasvc-run-as-service').first().click();
    // Lab marks the notebook changed once its kernel fills in the metadata: the service runs the file, so save first
    const save = page.locator('.jp-Dialog').getByRole('button', { name: 'Save and continue' });
    const form = page.locator('.jp-condasvc-form').last();
    await expect(save.or(form)).toBeVisible();
    if (await save.isVisible()) {
      await save.click();
    }
    await expect(form).toBeVisible();
    await expect(form.locator('select[name="kind"]')).toHaveValue('notebook');
    await expect(form.locator('input[name="path"]')).toHaveValue('analysis.ipynb');
    await expect(form.locator('input[name="name"]')).toHaveValue('analysis');
    await expect(form.locator('select[name="env"]')).toHaveValue('uienv');
    await form.getByRole('button', { name: 'Cancel' }).click();

    // and from the file browser's context menu, for a .py file
    await page.filebrowser.openDirectory('/');
    await page
      .locator('.jp-DirListing-item[data-file-type="python"]', { hasText: 'ticker.py' })
      .click({ button: 'right' });
    await page.getByRole('menuitem', { name: 'Run as Service…' }).click();
    // ticker.py already runs as the first test's service: Lab says so before making another
    await expect(page.locator('.jp-Dialog')).toContainText('already runs as a service');
    await page.locator('.jp-Dialog').getByRole('button', { name: 'Create another' }).click();
    const form2 = page.locator('.jp-condasvc-form').last();
    await expect(form2.locator('select[name="kind"]')).toHaveValue('script');
    await expect(form2.locator('input[name="path"]')).toHaveValue('ticker.py');
    await expect(form2.locator('input[name="name"]')).toHaveValue('ticker');
    await form2.getByRole('button', { name: 'Cancel' }).click();
  });

  test('a notebook service runs, shows its progress, and its executed copy opens', async ({ page, request }) => {
    const created = await request.post('/condasvc/api/services', {
      data: { name: NOTEBOOK, kind: 'notebook', env: 'uienv', path: 'analysis.ipynb', parameters: { alpha: 42 } }
    });
    expect(created.status(), await created.text()).toBe(201);
    await openPanel(page);
    const item = page.locator(`.jp-condasvc-item[data-name="${NOTEBOOK}"]`);
    await expect(item).toHaveAttribute('data-state', 'stopped');
    await item.getByRole('button', { name: 'Start', exact: true }).click();
    await item.locator('.jp-condasvc-item-name').click();
    const view = page.locator(`.jp-condasvc-details[data-name="${NOTEBOOK}"]`);
    // runs, then finishes on its own (status_text shows the progress meanwhile)
    await expect(view.locator('.jp-condasvc-logs-scroller')).toContainText('alpha is 42', { timeout: 60000 });
    await expect(view).toHaveAttribute('data-state', 'stopped', { timeout: 60000 });
    await view.getByRole('button', { name: 'Open executed notebook' }).click();
    await expect(page.locator('.jp-mod-current[role="tab"]', { hasText: 'analysis.out.ipynb' })).toBeVisible();
    await expect(page.locator('.jp-NotebookPanel:visible .jp-OutputArea-output').first()).toContainText('alpha is 42');
  });

  test('a service that fails raises a notification', async ({ page }) => {
    const form = await newServiceForm(page);
    await form.locator('input[name="name"]').fill(CRASHER);
    await form.locator('input[name="path"]').fill('crash.py');
    await form.locator('select[name="env"]').selectOption('uienv');
    await form.locator('select[name="restart"]').selectOption('no');
    await form.locator('button[type="submit"]').click();
    const toast = page.locator('.Toastify__toast', { hasText: `Service ${CRASHER} failed` });
    await expect(toast).toBeVisible({ timeout: 30000 });
    await expect(page.locator('.jp-condasvc-status-item')).toContainText('1 failed');
    // its action opens the logs, which say why
    await toast.getByRole('button', { name: 'Show logs' }).click();
    const view = page.locator(`.jp-condasvc-details[data-name="${CRASHER}"]`);
    await expect(view).toHaveAttribute('data-state', 'failed');
    await expect(view.locator('.jp-condasvc-logs-scroller')).toContainText('about to fail');
    await view.getByRole('button', { name: 'Reset failed' }).click();
    await expect(view).toHaveAttribute('data-state', 'stopped', { timeout: 30000 });
  });

  test('a crash loop stops at its start limit: Lab says why, offers reset-and-start, lists the runs, notifies once', async ({
    page,
    request
  }) => {
    await openPanel(page);
    const created = await request.post('/condasvc/api/services', {
      data: {
        name: LOOPER,
        kind: 'script',
        env: 'uienv',
        path: 'crash.py',
        restart: 'always',
        restart_sec: 0.3,
        start_limit_burst: 3,
        start_limit_interval_sec: 120
      }
    });
    expect(created.status(), await created.text()).toBe(201);
    const started = await request.post(`/condasvc/api/services/${LOOPER}/start`);
    expect(started.status()).toBe(200);
    // the sidebar item says why it stopped
    const item = page.locator(`.jp-condasvc-item[data-name="${LOOPER}"]`);
    await expect(item.locator('[data-trouble="start-limit"]')).toContainText('start limit hit', { timeout: 60000 });
    await item.locator('.jp-condasvc-item-name').click();
    const view = page.locator(`.jp-condasvc-details[data-name="${LOOPER}"]`);
    const banner = view.locator('[data-banner="start-limit"]');
    await expect(banner).toBeVisible();
    // every start is a run: the first manual, the others restarts
    const rows = view.locator('.jp-condasvc-runs-table tbody tr[data-run]');
    await expect(rows).toHaveCount(3, { timeout: 30000 });
    await expect(rows.last()).toContainText('manual');
    await expect(rows.first()).toContainText('restart');
    await rows.first().getByRole('button', { name: 'Log' }).click();
    await expect(view.locator('.jp-condasvc-run-log')).toContainText('about to fail');
    // one notification for the whole episode
    await expect(page.locator('.Toastify__toast', { hasText: LOOPER })).toHaveCount(1, { timeout: 10000 });
    await page.screenshot({ path: test.info().outputPath('start-limit.png') });
    // the recovery action: the counter is reset and it runs again
    await banner.getByRole('button', { name: 'Reset and start' }).click();
    await expect(view.locator('.jp-condasvc-runs-table tr[data-run]', { hasText: 'manual' })).toHaveCount(2, {
      timeout: 30000
    });
  });
});

// keep `galata` referenced for helpers used in other files
void galata;
