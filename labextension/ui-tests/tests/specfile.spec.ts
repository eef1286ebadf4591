/**
 * Export spec… downloads NAME.yaml; Import spec… reads a YAML file and opens the
 * New service form filled in from it; its "Restart when the file changes" box
 * previews the .path unit (issue 12, item 9).
 */
import { expect, test } from '@jupyterlab/galata';
import * as fs from 'fs';

import { createService, openService, removeService } from './service-api';

const NAME = `exported-${Date.now().toString(36).slice(-5)}`;

test.use({ autoGoto: true });

test.describe.serial('spec files', () => {
  test.afterAll(async ({ request }) => {
    await removeService(request, NAME);
  });

  test('export as YAML, import into the form', async ({ page, request }) => {
    await createService(request, {
      name: NAME,
      kind: 'script',
      env: 'uienv',
      path: 'ticker.py',
      args: ['--greeting', 'hi there'],
      environment: { MODE: 'demo' }
    });

    const view = await openService(page, NAME);
    const [download] = await Promise.all([
      page.waitForEvent('download'),
      view.getByRole('button', { name: 'Export spec…' }).click()
    ]);
    expect(download.suggestedFilename()).toBe(`${NAME}.yaml`);
    const text = fs.readFileSync(await download.path(), 'utf-8');
    expect(text).toContain(`name: ${NAME}`);
    expect(text).toContain('path: ticker.py');
    expect(text).toContain('- hi there');
    expect(text).toContain('MODE: demo');

    // the same file, imported: the name is taken, so the form proposes a free one
    const [chooser] = await Promise.all([
      page.waitForEvent('filechooser'),
      page.locator('.jp-condasvc-panel-header').getByTitle('Import spec… (a YAML or JSON file)').click()
    ]);
    await chooser.setFiles({ name: `${NAME}.yaml`, mimeType: 'application/yaml', buffer: Buffer.from(text) });
    const form = page.locator('.jp-condasvc-form').last();
    await expect(form.locator('input[name="name"]')).toHaveValue(`${NAME}-2`);
    await expect(form.locator('input[name="path"]')).toHaveValue('ticker.py');
    await expect(form.locator('input[name="args"]')).toHaveValue("--greeting 'hi there'");
    await expect(form.locator('.jp-condasvc-form-preview pre').first()).toContainText('ticker.py');
    // restart on change: the preview shows the .path unit that watches the script
    await form.locator('input[name="restart_on_change"]').check();
    await expect(form.getByLabel('Path unit preview')).toContainText(/PathChanged=.*ticker\.py/);
    await expect(form.getByLabel('Path unit preview')).toContainText(`Unit=`);
    // every field came from the file (restart_on_change: false included): Cancel closes without asking
    await form.getByRole('button', { name: 'Cancel' }).click();
    await expect(page.locator('.jp-condasvc-form')).toHaveCount(0);

    // a file that is not a spec: an error, no form
    const [bad] = await Promise.all([
      page.waitForEvent('filechooser'),
      page.locator('.jp-condasvc-panel-header').getByTitle('Import spec… (a YAML or JSON file)').click()
    ]);
    await bad.setFiles({ name: 'bad.yaml', mimeType: 'application/yaml', buffer: Buffer.from('- just\n- a list\n') });
    await expect(page.locator('.Toastify__toast').filter({ hasText: 'bad.yaml must hold a mapping' })).toBeVisible();
  });
});
