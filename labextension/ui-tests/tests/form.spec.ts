/**
 * The form's rough edges: a probe asks for its URL on the URL field (not before
 * it can be typed), the server's probe errors show on the row they name, defaults show as placeholders, cron gets its calendar
 * equivalent, schedule presets, the timer has its own heading, an out-of-date
 * preview says so, and a filled-in form is not discarded without asking.
 * Screenshots (light and dark) go to test-results/form.
 */
import { expect, IJupyterLabPageFixture, test } from '@jupyterlab/galata';
import * as fs from 'fs';
import * as path from 'path';

const OUT = path.join(__dirname, '..', 'test-results', 'form');

test.use({ autoGoto: true });

async function newForm(page: IJupyterLabPageFixture) {
  await page.sidebar.openTab('jp-condasvc-panel');
  await page.locator('.jp-condasvc-panel-header').getByTitle('New service').click();
  const form = page.locator('.jp-condasvc-form').last();
  await expect(form.locator('select[name="env"] option', { hasText: 'uienv' })).toHaveCount(1);
  return form;
}

test('probe, defaults, cron, presets, timer heading, stale preview, unsaved form', async ({ page }) => {
  const form = await newForm(page);
  await form.locator('input[name="name"]').fill('form-check');
  await form.locator('input[name="path"]').fill('ticker.py');
  await expect(form.locator('.jp-condasvc-form-preview pre').first()).toContainText('ExecStart=');
  // defaults as placeholders: the server's, read from the preview, and the probe's
  await expect(form.locator('input[name="restart_sec"]')).toHaveAttribute('placeholder', /default: \d/);
  await expect(form.locator('input[name="start_limit_burst"]')).toHaveAttribute('placeholder', /default: \d/);

  // HTTP probe: no error until the URL field is used, and then on that field
  await form.locator('select[name="health_type"]').selectOption('http');
  await expect(form.locator('.jp-condasvc-field-error')).toHaveCount(0);
  await expect(form.getByPlaceholder('10')).toBeVisible();
  await form.locator('input[name="health_url"]').fill('x');
  await form.locator('input[name="health_url"]').fill('');
  await expect(form.locator('.jp-condasvc-field-error[data-field="health_url"]')).toContainText('URL');
  await expect(form.locator('.jp-condasvc-field-error[data-field="health_check"]')).toHaveCount(0);
  await form.locator('input[name="health_url"]').fill('http://127.0.0.1:8050/health');
  await expect(form.locator('.jp-condasvc-field-error[data-field="health_url"]')).toHaveCount(0);

  // TCP probe: the server names every probe error health_check; the one about the port shows on the Port row
  await form.locator('select[name="health_type"]').selectOption('tcp');
  await form.locator('input[name="health_host"]').fill('127.0.0.1');
  await form.locator('input[name="health_port"]').fill('70000');
  await expect(form.locator('.jp-condasvc-field-error[data-field="health_port"]')).toContainText('65535');
  await expect(form.locator('.jp-condasvc-field-error[data-field="health_check"]')).toHaveCount(0);
  await form.locator('input[name="health_port"]').fill('8050');
  await expect(form.locator('.jp-condasvc-field-error[data-field="health_port"]')).toHaveCount(0);
  await form.locator('select[name="health_type"]').selectOption('');

  // cron: its calendar equivalent, one click away; then the timer has its own heading
  await form.locator('input[name="schedule"]').fill('*/5 * * * *');
  await expect(form.locator('.jp-condasvc-cron-hint')).toContainText('*-*-* *:00/5:00');
  await form.locator('.jp-condasvc-cron-hint').getByRole('button', { name: 'Use it' }).click();
  await expect(form.locator('input[name="schedule"]')).toHaveValue('*-*-* *:00/5:00');
  await expect(form.locator('.jp-condasvc-form-preview h3', { hasText: /\.timer$/ })).toBeVisible();
  await form.getByLabel('Schedule presets').selectOption('Mon..Fri *-*-* 09:00:00');
  await expect(form.locator('input[name="schedule"]')).toHaveValue('Mon..Fri *-*-* 09:00:00');
  await expect(form.locator('[aria-label="Timer preview"]')).toContainText('OnCalendar=Mon..Fri *-*-* 09:00:00');

  // an invalid entry: the preview says it is out of date
  await form.locator('input[name="memory_max"]').fill('lots');
  await expect(form.locator('.jp-condasvc-preview-stale')).toBeVisible();
  await page.evaluate(() => document.querySelectorAll('.jp-condasvc-editor').forEach(e => e.scrollTo(0, 0)));
  await page.screenshot({ path: path.join(OUT, 'form-light.png') });
  await page.theme.setDarkTheme();
  await page.screenshot({ path: path.join(OUT, 'form-dark.png') });
  await page.theme.setLightTheme();
  await form.locator('input[name="memory_max"]').fill('');
  await expect(form.locator('.jp-condasvc-preview-stale')).toHaveCount(0);

  // Cancel asks before discarding; Keep editing keeps it
  await form.getByRole('button', { name: 'Cancel' }).click();
  const dialog = page.locator('.jp-Dialog');
  await expect(dialog).toContainText('Discard your changes?');
  await dialog.getByRole('button', { name: 'Keep editing' }).click();
  await expect(form).toBeVisible();
  await form.getByRole('button', { name: 'Cancel' }).click();
  await dialog.getByRole('button', { name: 'Discard' }).click();
  await expect(page.locator('.jp-condasvc-form')).toHaveCount(0);
});

test('a variable marked secret is write-only: the API answers null and Edit keeps it', async ({ page, request }) => {
  const name = `secret-${Date.now().toString(36).slice(-5)}`;
  try {
    const form = await newForm(page);
    await form.locator('input[name="name"]').fill(name);
    await form.locator('input[name="path"]').fill('ticker.py');
    await form.getByRole('button', { name: 'Add variable' }).click();
    await form.getByLabel('Variable name').nth(0).fill('API_KEY');
    await form.getByLabel('Variable value').nth(0).fill('s3cret');
    await form.getByLabel('Secret', { exact: true }).nth(0).check();
    await expect(form.getByLabel('Variable value').nth(0)).toHaveAttribute('type', 'password');
    await form.getByRole('button', { name: 'Add variable' }).click();
    await form.getByLabel('Variable name').nth(1).fill('MODE');
    await form.getByLabel('Variable value').nth(1).fill('fast');
    await expect(form.getByLabel('Variable value').nth(1)).toHaveAttribute('type', 'text');
    await form.locator('button[type="submit"]').click();
    const view = page.locator(`.jp-condasvc-details[data-name="${name}"]`);
    await expect(view).toBeVisible();
    const spec = async () => (await (await request.get(`/condasvc/api/services/${name}`)).json()).spec;
    let s = await spec();
    expect(s.secrets).toEqual(['API_KEY']);
    expect(s.environment).toEqual({ API_KEY: null, MODE: 'fast' });

    await view.getByRole('button', { name: 'Edit', exact: true }).click();
    const edit = page.locator('.jp-condasvc-form').last();
    await expect(edit.getByLabel('Variable value').nth(0)).toHaveValue('');
    await expect(edit.getByLabel('Variable value').nth(0)).toHaveAttribute('placeholder', 'unchanged (write-only)');
    await expect(edit.getByLabel('Secret', { exact: true }).nth(0)).toBeChecked();
    await expect(edit.getByLabel('Variable value').nth(1)).toHaveValue('fast');
    await page.screenshot({ path: path.join(OUT, 'secret-light.png') });
    await edit.locator('input[name="description"]').fill('with a secret');
    await edit.getByRole('button', { name: 'Save' }).click();
    await expect(page.locator('.jp-condasvc-form')).toHaveCount(0);
    s = await spec();
    expect(s.secrets).toEqual(['API_KEY']);
    expect(s.environment).toEqual({ API_KEY: null, MODE: 'fast' });
    // still stored: the unit's 0600 EnvironmentFile (this test runs as the same user) holds it, the unit does not
    const unit = await (await request.get(`/condasvc/api/services/${name}/unit`)).text();
    expect(unit).not.toContain('s3cret');
    const envFile = /EnvironmentFile=-?([^\s"\\]+)/.exec(unit)?.[1] ?? '';
    expect(fs.readFileSync(envFile, 'utf-8')).toContain('s3cret');
  } finally {
    await request.delete(`/condasvc/api/services/${name}`).catch(() => undefined);
  }
});

test('after an edit a running service says "restart needed" until Restart now', async ({ page, request }) => {
  const name = `rneed-${Date.now().toString(36).slice(-5)}`;
  try {
    const created = await request.post('/condasvc/api/services', {
      data: { name, kind: 'script', env: 'uienv', path: 'ticker.py' }
    });
    expect(created.status(), await created.text()).toBe(201);
    await request.post(`/condasvc/api/services/${name}/start`);
    await page.sidebar.openTab('jp-condasvc-panel');
    const row = page.locator(`.jp-condasvc-item[data-name="${name}"]`);
    await expect(row).toHaveAttribute('data-state', 'running', { timeout: 30000 });
    await expect(row.locator('.jp-condasvc-restart-needed')).toHaveCount(0);
    await row.locator('.jp-condasvc-item-name').click();
    const view = page.locator(`.jp-condasvc-details[data-name="${name}"]`);
    await view.getByRole('button', { name: 'Edit', exact: true }).click();
    const form = page.locator('.jp-condasvc-form').last();
    await form.locator('input[name="args"]').fill('--greeting "hi there"');
    await form.getByRole('button', { name: 'Save' }).click();
    await expect(view.locator('.jp-condasvc-restart-banner')).toContainText('still runs the old');
    await expect(row.locator('.jp-condasvc-restart-needed')).toBeVisible();
    await page.evaluate(() =>
      document.querySelectorAll<HTMLElement>('.Toastify__close-button').forEach(b => b.click())
    );
    await page.screenshot({ path: path.join(OUT, 'restart-needed-light.png') });
    await page.theme.setDarkTheme();
    await page.screenshot({ path: path.join(OUT, 'restart-needed-dark.png') });
    await page.theme.setLightTheme();
    await view.locator('.jp-condasvc-restart-banner').getByRole('button', { name: 'Restart now' }).click();
    await expect(view.locator('.jp-condasvc-restart-banner')).toHaveCount(0, { timeout: 30000 });
    await expect(row.locator('.jp-condasvc-restart-needed')).toHaveCount(0);
    await expect(view.locator('[data-fact="command"]')).toContainText("--greeting 'hi there'");
  } finally {
    await request.delete(`/condasvc/api/services/${name}`).catch(() => undefined);
  }
});

test('duplicate a service from its row: same settings, a free name, secrets asked again', async ({ page, request }) => {
  const name = `dup-${Date.now().toString(36).slice(-5)}`;
  try {
    const created = await request.post('/condasvc/api/services', {
      data: {
        name,
        kind: 'script',
        env: 'uienv',
        path: 'ticker.py',
        args: ['--rate', '2 per second'],
        environment: { TOKEN: 'x1', MODE: 'fast' },
        secrets: ['TOKEN']
      }
    });
    expect(created.status(), await created.text()).toBe(201);
    await page.sidebar.openTab('jp-condasvc-panel');
    await page.locator(`.jp-condasvc-item[data-name="${name}"] .jp-condasvc-item-details`).click({ button: 'right' });
    await page.getByRole('menuitem', { name: 'Duplicate Service…' }).click();
    const form = page.locator('.jp-condasvc-form').last();
    await expect(form.locator('input[name="name"]')).toHaveValue(`${name}-copy`);
    await expect(form.locator('input[name="args"]')).toHaveValue("--rate '2 per second'");
    // variables come back sorted: MODE, TOKEN
    await expect(form.getByLabel('Variable name').nth(0)).toHaveValue('MODE');
    await expect(form.getByLabel('Variable value').nth(0)).toHaveValue('fast');
    await expect(form.getByLabel('Secret', { exact: true }).nth(1)).toBeChecked();
    await expect(form.getByLabel('Variable value').nth(1)).toHaveValue('');
    await expect(form.getByLabel('Variable value').nth(1)).not.toHaveAttribute('placeholder', 'unchanged (write-only)');
    await form.getByLabel('Variable value').nth(1).fill('x2');
    await form.locator('button[type="submit"]').click();
    await expect(page.locator(`.jp-condasvc-details[data-name="${name}-copy"]`)).toBeVisible();
    const copy = await (await request.get(`/condasvc/api/services/${name}-copy`)).json();
    expect(copy.spec.args).toEqual(['--rate', '2 per second']);
    expect(copy.spec.environment).toEqual({ TOKEN: null, MODE: 'fast' });
  } finally {
    await request.delete(`/condasvc/api/services/${name}`).catch(() => undefined);
    await request.delete(`/condasvc/api/services/${name}-copy`).catch(() => undefined);
  }
});
