/**
 * The form's rough edges: a probe asks for its URL on the URL field (not before
 * it can be typed), defaults show as placeholders, cron gets its calendar
 * equivalent, schedule presets, the timer has its own heading, an out-of-date
 * preview says so, and a filled-in form is not discarded without asking.
 * Screenshots (light and dark) go to test-results/form.
 */
import { expect, IJupyterLabPageFixture, test } from '@jupyterlab/galata';
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
