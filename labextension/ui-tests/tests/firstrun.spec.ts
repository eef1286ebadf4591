/**
 * A newcomer's first minute: from the examples folder, start a service without
 * leaving Lab, in the server's own environment (no conda needed), and see it
 * answer on its health endpoint. Screenshots of the form and the running
 * service in light and dark go to test-results/firstrun.
 */
import { expect, IJupyterLabPageFixture, test } from '@jupyterlab/galata';
import * as path from 'path';

const OUT = path.join(
  __dirname,
  '..',
  'test-results',
  process.env.CONDASVC_UI_NO_CONDA === '1' ? 'firstrun-noconda' : 'firstrun'
);
const NAME = `webapp-${Date.now().toString(36).slice(-5)}`;
const PORT = 20000 + Math.floor(Math.random() * 20000);

test.use({ autoGoto: true });

async function runAsService(page: IJupyterLabPageFixture, file: string) {
  await page.filebrowser.openDirectory('examples');
  await page.locator('.jp-DirListing-item', { hasText: file }).click({ button: 'right' });
  await page.getByRole('menuitem', { name: 'Run as Service…' }).click();
  const form = page.locator('.jp-condasvc-form').last();
  await expect(form).toBeVisible();
  return form;
}

test.describe.serial('first run', () => {
  test.afterAll(async ({ request }) => {
    await request.delete(`/condasvc/api/services/${NAME}`).catch(() => undefined);
  });

  test('start the example web app from the file browser, in the server environment', async ({ page, request }) => {
    const t0 = Date.now();
    if (process.env.CONDASVC_UI_NO_CONDA === '1') {
      // playwright.noconda.config.js: this machine has no conda at all
      const listed = (await (await request.get('/condasvc/api/environments')).json()).environments as Array<{
        kind?: string;
        name: string;
      }>;
      expect(listed.filter(e => (e.kind ?? 'conda') === 'conda').map(e => e.name)).toEqual([]);
    }
    const form = await runAsService(page, 'webapp.py');
    await expect(form.locator('input[name="path"]')).toHaveValue('examples/webapp.py');
    // The default environment is the server's own, which has Python: nothing to install first.
    const env = form.locator('select[name="env"]');
    await expect(env.locator('option:checked')).toContainText("Jupyter server's environment", { timeout: 20000 });
    await expect(env.locator('option:checked')).toContainText('Python 3');
    await expect(form.locator('.jp-condasvc-field-error[data-field="env"]')).toHaveCount(0);
    await form.locator('input[name="name"]').fill(NAME);
    await form.locator('input[name="args"]').fill(`--port ${PORT} --greeting "hello there"`);
    await expect(form.locator('.jp-condasvc-form-preview pre').first()).toContainText('VIRTUAL_ENV=');
    await form.evaluate(f => f.closest('.jp-condasvc-editor')?.scrollTo(0, 0));
    await page.screenshot({ path: path.join(OUT, 'form-light.png') });
    await page.theme.setDarkTheme();
    await page.screenshot({ path: path.join(OUT, 'form-dark.png') });
    await page.theme.setLightTheme();
    await form.locator('button[type="submit"]').click();

    const view = page.locator(`.jp-condasvc-details[data-name="${NAME}"]`);
    await expect(view).toHaveAttribute('data-state', 'running', { timeout: 30000 });
    await expect(view.locator('.jp-condasvc-logs-scroller')).toContainText(`on http://127.0.0.1:${PORT}/`, {
      timeout: 30000
    });
    // The command is shown as it could be pasted into a shell.
    await expect(view.locator('[data-fact="command"]')).toContainText(`--port ${PORT} --greeting 'hello there'`);
    const health = await request.get(`http://127.0.0.1:${PORT}/health`);
    expect(health.ok()).toBeTruthy();
    expect((await health.json()).status).toBe('ok');
    const seconds = (Date.now() - t0) / 1000;
    process.stdout.write(`first run: example web app answering ${seconds.toFixed(1)} s after Lab opened\n`);
    test.info().annotations.push({ type: 'first run', description: `${seconds.toFixed(1)} s` });
    await page.sidebar.openTab('jp-condasvc-panel');
    await expect(page.locator(`.jp-condasvc-item[data-name="${NAME}"]`)).toHaveAttribute('data-state', 'running');
    await page.screenshot({ path: path.join(OUT, 'running-light.png') });
    await page.theme.setDarkTheme();
    await page.screenshot({ path: path.join(OUT, 'running-dark.png') });
    await page.theme.setLightTheme();
  });

  test('run as service: saves unsaved changes first, and points to the service a file already has', async ({
    page
  }) => {
    await page.evaluate(async () => {
      await window.jupyterapp.commands.execute('docmanager:open', { path: 'examples/report.ipynb' });
    });
    await expect(page.locator('.jp-NotebookPanel .jp-Notebook')).toBeVisible();
    // Change the parameters cell without saving.
    const cell = page.locator('.jp-NotebookPanel .jp-Cell').nth(1).locator('.cm-content');
    await cell.click();
    await page.keyboard.press('End');
    await page.keyboard.type('  # edited');
    await expect(
      page.locator('.jp-mod-current[role="tab"].jp-mod-dirty, .jp-mod-current.jp-mod-dirty').first()
    ).toBeVisible();
    await page.locator('.jp-condasvc-run-as-service').first().click();
    const dialog = page.locator('.jp-Dialog');
    await expect(dialog).toContainText('Save report.ipynb first?');
    await page.screenshot({ path: path.join(OUT, 'save-first-light.png') });
    await dialog.getByRole('button', { name: 'Save and continue' }).click();
    const form = page.locator('.jp-condasvc-form').last();
    await expect(form.locator('input[name="path"]')).toHaveValue('examples/report.ipynb');
    await expect(page.locator('.jp-mod-dirty')).toHaveCount(0);
    const saved = await page.evaluate(async () => {
      const m = await window.jupyterapp.serviceManager.contents.get('examples/report.ipynb');
      return JSON.stringify(m.content);
    });
    expect(saved).toContain('# edited');
    await form.getByRole('button', { name: 'Cancel' }).click();

    // webapp.py already has the service of the first test: Lab offers to open it.
    await page.filebrowser.openDirectory('examples');
    await page.locator('.jp-DirListing-item', { hasText: 'webapp.py' }).click({ button: 'right' });
    await page.getByRole('menuitem', { name: 'Run as Service…' }).click();
    await expect(dialog).toContainText(`The service ${NAME} runs this file`);
    await dialog.getByRole('button', { name: `Open ${NAME}` }).click();
    await expect(page.locator(`.jp-condasvc-details[data-name="${NAME}"]`)).toBeVisible();
  });

  test('an environment without Python is never the default, and says so next to the field', async ({ page }) => {
    const form = await runAsService(page, 'report.ipynb');
    await expect(form.locator('select[name="kind"]')).toHaveValue('notebook');
    const env = form.locator('select[name="env"]');
    await expect(env.locator('option:checked')).not.toContainText('no Python', { timeout: 20000 });
    // The conda installation's base has no ipykernel: choosing it for a notebook shows why, at the field.
    await env.selectOption({
      label: (await env.locator('option', { hasText: 'base' }).first().textContent()) ?? 'base'
    });
    await expect(form.locator('.jp-condasvc-field-error[data-field="env"]')).toContainText(/no ipykernel|no Python/);
    await form.getByRole('button', { name: 'Cancel' }).click();
  });
});
