/**
 * Issue 11: a scheduled notebook whose cell raises, left to its timer. The
 * Runs list of its service tab shows each run with its duration and result;
 * a run's Log shows that run's own lines and its Notebook link gives that
 * run's own executed copy (papermill's error marker and metadata). Light and
 * dark screenshots go to test-results/runs.
 */
import { expect, IJupyterLabPageFixture, test } from '@jupyterlab/galata';
import * as fs from 'fs';
import * as path from 'path';

const OUT = path.join(__dirname, '..', 'test-results', 'runs');
const sfx = Date.now().toString(36).slice(-5);
const NAME = `nightly-fail-${sfx}`;
const FILE = `fails-${sfx}.ipynb`;
const RUNS = 3;

const notebook = {
  cells: [
    {
      cell_type: 'code',
      metadata: {},
      source: "import os\nprint('line of run', os.environ['INVOCATION_ID'], flush=True)",
      outputs: [],
      execution_count: null
    },
    { cell_type: 'code', metadata: {}, source: 'rows = 10\nrows / 0', outputs: [], execution_count: null },
    { cell_type: 'code', metadata: {}, source: "print('never printed')", outputs: [], execution_count: null }
  ],
  metadata: { kernelspec: { name: 'condasvc-uienv', display_name: 'Python (uienv)', language: 'python' } },
  nbformat: 4,
  nbformat_minor: 4
};

async function dismissToasts(page: IJupyterLabPageFixture): Promise<void> {
  await page.evaluate(() =>
    document
      .querySelectorAll<HTMLElement>('.Toastify__close-button, .jp-Notification-Toast-Close')
      .forEach(b => b.click())
  );
}

test.use({ autoGoto: true });

test.describe.serial('run history', () => {
  test.afterAll(async ({ request }) => {
    await request.delete(`/condasvc/api/services/${NAME}`).catch(() => undefined);
    await request.delete(`/api/contents/${FILE}`).catch(() => undefined);
  });

  test('a scheduled failing notebook: runs with duration and result, each with its own log and notebook', async ({
    page,
    request
  }) => {
    const put = await request.put(`/api/contents/${FILE}`, {
      data: { type: 'notebook', format: 'json', content: notebook }
    });
    expect(put.ok(), await put.text()).toBeTruthy();
    const created = await request.post('/condasvc/api/services', {
      data: {
        name: NAME,
        kind: 'notebook',
        env: 'uienv',
        path: FILE,
        schedule: '*:*:0/5',
        restart: 'no',
        start_limit_burst: 50,
        start_limit_interval_sec: 60,
        description: 'Nightly report (fails on purpose)'
      }
    });
    expect(created.status(), await created.text()).toBe(201);
    // armed, not started: every run is the timer's
    expect((await request.post(`/condasvc/api/services/${NAME}/resume`)).status()).toBe(200);

    await page.sidebar.openTab('jp-condasvc-panel');
    const item = page.locator(`.jp-condasvc-item[data-name="${NAME}"]`);
    await item.locator('.jp-condasvc-item-name').click();
    const view = page.locator(`.jp-condasvc-details[data-name="${NAME}"]`);
    const done = view.locator('.jp-condasvc-runs-table tbody tr[data-run][data-state="failed"]');
    await expect.poll(() => done.count(), { timeout: 150000, intervals: [1000] }).toBeGreaterThanOrEqual(RUNS);
    // left alone long enough; pause so the list holds still for the checks and pictures
    expect((await request.post(`/condasvc/api/services/${NAME}/pause`)).status()).toBe(200);
    // a run that had begun ends (failed) before the checks
    await expect(view).toHaveAttribute('data-state', 'failed', { timeout: 60000 });
    await expect(view.locator('.jp-condasvc-runs summary')).toContainText(/Runs \(\d+\)/);

    // the runs whose end the journal has told (a run's end line may lag behind its state)
    const rows = done;
    const n = await rows.count();
    expect(n).toBeGreaterThanOrEqual(RUNS);
    const ids: string[] = [];
    for (let i = 0; i < n; i++) {
      const row = rows.nth(i);
      ids.push((await row.getAttribute('data-run')) ?? '');
      const cells = row.locator('td');
      await expect(cells.nth(1)).toHaveText('timer');
      await expect(cells.nth(2)).not.toHaveText('—'); // a duration
      await expect(cells.nth(3)).toHaveText('failed (exit-code)');
      await expect(row.getByRole('button', { name: 'Notebook' })).toBeVisible();
    }
    expect(new Set(ids).size).toBe(n);

    // a run's log: its own lines only
    const second = rows.nth(1);
    const id = ids[1];
    await second.getByRole('button', { name: 'Log', exact: true }).click();
    const log = view.locator('.jp-condasvc-run-log');
    await expect(log).toContainText(`line of run ${id}`);
    await expect(log).toContainText('ZeroDivisionError');
    for (const other of ids.filter(x => x !== id)) {
      await expect(log).not.toContainText(other);
    }

    // a run's notebook: that run's own executed copy
    const [download] = await Promise.all([
      page.waitForEvent('download'),
      second.getByRole('button', { name: 'Notebook' }).click()
    ]);
    const copy = JSON.parse(fs.readFileSync((await download.path()) as string, 'utf-8'));
    expect(copy.metadata.papermill.exception).toBe(true);
    const text = JSON.stringify(copy.cells);
    const outputs = JSON.stringify(copy.cells.map((c: { outputs?: unknown[] }) => c.outputs ?? []));
    expect(outputs).toContain(`line of run ${id}`);
    expect(outputs).toContain('ZeroDivisionError');
    expect(outputs).not.toContain('never printed');
    expect(text).toContain('papermill-error-cell-tag');
    for (const other of ids.filter(x => x !== id)) {
      expect(text).not.toContain(other);
    }

    // every run failed, yet the episode raised one notification
    await expect(page.locator('.Toastify__toast', { hasText: NAME })).toHaveCount(1);
    await dismissToasts(page);
    await expect(page.locator('.Toastify__toast')).toHaveCount(0);
    await view.locator('.jp-condasvc-runs').scrollIntoViewIfNeeded();
    fs.mkdirSync(OUT, { recursive: true });
    await page.screenshot({ path: path.join(OUT, 'runs-light.png') });
    await view.locator('.jp-condasvc-runs').screenshot({ path: path.join(OUT, 'runs-list-light.png') });
    await page.theme.setDarkTheme();
    await dismissToasts(page);
    await view.locator('.jp-condasvc-runs').scrollIntoViewIfNeeded();
    await page.screenshot({ path: path.join(OUT, 'runs-dark.png') });
    await view.locator('.jp-condasvc-runs').screenshot({ path: path.join(OUT, 'runs-list-dark.png') });
    await page.theme.setLightTheme();
  });
});
