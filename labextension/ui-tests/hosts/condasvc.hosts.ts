/**
 * Hosts in the panel (issue 15), against a real server configured with one host that cannot
 * be reached (playwright.hosts.config.js: CondaSvcApp.hosts = ['nosuchhost.invalid', ...]): the
 * host shows down with ssh's reason and the fix, a local service runs and is listed as current,
 * the host filter and the form's Host field offer the hosts, and the form asks the chosen host
 * for its environments. With scripts/test's sshd (CONDASVC_SSH_HOST) a real second host is
 * configured too: a command service is created on it through the form, runs, its log is
 * followed, it stops, and its runs are read, all through ?host=. Screenshots (light and dark;
 * a few real services, the real host, then 1,000 on three hosts fed to the model as
 * sidebar.spec.ts does) go to test-results/hosts.
 */
import { expect, IJupyterLabPageFixture, test } from '@jupyterlab/galata';
import * as path from 'path';

const OUT = path.join(__dirname, '..', 'test-results', 'hosts');
/** The configured host that cannot be reached (playwright.hosts.config.js). */
const HOST = 'nosuchhost.invalid';
/** A real host over ssh (scripts/test's sshd-stack), when there is one. */
const REAL = process.env.CONDASVC_SSH_HOST || '';
/** The hosts as the server lists them: local, then CondaSvcApp.hosts in order. */
const HOSTS = ['local', HOST, ...(REAL ? [REAL] : [])];
const sfx = Date.now().toString(36).slice(-4);
const TICK = `hosts-tick-${sfx}`;
const RTICK = `hosts-rtick-${sfx}`;

test.use({ autoGoto: true });

async function shots(page: IJupyterLabPageFixture, name: string): Promise<void> {
  await page.evaluate(() => document.querySelectorAll<HTMLElement>('.Toastify__close-button').forEach(b => b.click()));
  await page.screenshot({ path: path.join(OUT, `${name}-light.png`) });
  await page.theme.setDarkTheme();
  await page.screenshot({ path: path.join(OUT, `${name}-dark.png`) });
  await page.theme.setLightTheme();
}

const banner = (page: IJupyterLabPageFixture) => page.locator(`.jp-condasvc-host-banner[data-host="${HOST}"]`);

test.describe.serial('hosts', () => {
  test.afterAll(async ({ request }) => {
    await request.delete(`/condasvc/api/services/${TICK}`).catch(() => undefined);
    if (REAL) {
      await request.delete(`/condasvc/api/services/${RTICK}?host=${REAL}`).catch(() => undefined);
    }
  });

  test('an unreachable host shows down with its reason and fix; local services are unaffected', async ({
    page,
    request
  }) => {
    const created = await request.post('/condasvc/api/services', {
      data: { name: TICK, kind: 'script', env: 'uienv', path: 'ticker.py' }
    });
    expect(created.status(), await created.text()).toBe(201);
    expect((await created.json()).host).toBe('local');
    const started = await request.post(`/condasvc/api/services/${TICK}/start`);
    expect(started.status(), await started.text()).toBe(200);

    await page.sidebar.openTab('jp-condasvc-panel');
    // ssh cannot resolve the name: the host is down with ssh's words and what to do.
    await expect(banner(page)).toHaveAttribute('data-host-state', 'down', { timeout: 60000 });
    await expect(banner(page)).toContainText(HOST);
    await expect(banner(page).locator('.jp-condasvc-host-message')).not.toBeEmpty();
    await expect(banner(page).locator('.jp-condasvc-fix')).not.toBeEmpty();
    // The local service is listed, current and running, with its host.
    const tick = page.locator(`.jp-condasvc-item[data-name="${TICK}"][data-host="local"]`);
    await expect(tick).toHaveAttribute('data-state', 'running', { timeout: 30000 });
    await expect(tick.locator('.jp-condasvc-host-badge')).toHaveText('local');
    await expect(tick).not.toHaveClass(/jp-condasvc-item-stale/);
    await expect(page.locator('.jp-condasvc-banner-error', { hasText: 'user manager' })).toHaveCount(0);
    // The host filter: both hosts; the down host has no services yet.
    const filter = page.getByLabel('Host', { exact: true });
    await expect(filter.locator('option')).toHaveText(['any host', ...HOSTS]);
    await filter.selectOption(HOST);
    await expect(page.locator('.jp-condasvc-item')).toHaveCount(0);
    await expect(page.locator('.jp-condasvc-list-scroller .jp-condasvc-empty')).toBeVisible();
    await filter.selectOption('local');
    await expect(tick).toBeVisible();
    await filter.selectOption('all');
    await shots(page, 'down-few');

    // Its tab reads logs and runs of the local host (no host parameter), as before.
    await tick.locator('.jp-condasvc-item-name').click();
    const view = page.locator(`.jp-condasvc-details[data-name="${TICK}"][data-host="local"]`);
    await expect(view).toBeVisible();
    await expect(view.locator('.jp-condasvc-host-badge')).toHaveCount(0);
    await expect(page.locator('.jp-condasvc-follow-state')).toHaveAttribute('data-state', /live|parked/, {
      timeout: 30000
    });
    await expect(view.locator('.jp-condasvc-logs-scroller')).toContainText('tick 2', { timeout: 30000 });
  });

  test('the form offers the hosts and asks the chosen one for its environments; an edit keeps the host', async ({
    page
  }) => {
    await page.sidebar.openTab('jp-condasvc-panel');
    await expect(banner(page)).toHaveAttribute('data-host-state', 'down', { timeout: 60000 });
    await page.locator('.jp-condasvc-panel-header').getByTitle('New service').click();
    const form = page.locator('form.jp-condasvc-form');
    const host = form.locator('select[name="host"]');
    await expect(host).toHaveValue('local');
    await expect(host.locator('option')).toHaveCount(HOSTS.length);
    const env = form.locator('select[name="env"]');
    await expect(env.locator('option', { hasText: 'uienv' })).toHaveCount(1, { timeout: 30000 });
    // The unreachable host: its environments cannot be listed, and the form says why.
    await host.selectOption(HOST);
    await expect(form.locator('[data-field="env"] .jp-condasvc-field-error').first()).toContainText(HOST, {
      timeout: 60000
    });
    await expect(env.locator('option', { hasText: 'uienv' })).toHaveCount(0);
    await shots(page, 'form-host');
    // Back to local: its environments again.
    await host.selectOption('local');
    await expect(env.locator('option', { hasText: 'uienv' })).toHaveCount(1, { timeout: 30000 });
    // Choosing a host is a change: closing asks first.
    await form.getByRole('button', { name: 'Cancel' }).click();
    await page.locator('.jp-Dialog').getByRole('button', { name: 'Discard' }).click();
    // An edit shows the host, read-only.
    await page.locator(`.jp-condasvc-item[data-name="${TICK}"] .jp-condasvc-item-details`).click({ button: 'right' });
    await page.getByRole('menuitem', { name: 'Edit Service…' }).click();
    const edit = page.locator('form.jp-condasvc-form').last();
    await expect(edit.locator('select[name="host"]')).toBeDisabled();
    await expect(edit.locator('select[name="host"]')).toHaveValue('local');
  });

  test('a reachable host: a service created on it through the form runs, logs, stops and has runs', async ({
    page,
    request
  }) => {
    test.skip(!REAL, 'needs the sshd of scripts/test (CONDASVC_SSH_HOST)');
    await page.sidebar.openTab('jp-condasvc-panel');
    await page.locator('.jp-condasvc-panel-header').getByTitle('New service').click();
    const form = page.locator('form.jp-condasvc-form');
    await form.locator('select[name="host"]').selectOption(REAL);
    // The environments are the remote host's: its list replaces the local one.
    const env = form.locator('select[name="env"]');
    await expect(env.locator('option').first()).not.toHaveText(/Loading|none listed/, { timeout: 60000 });
    await expect(form.locator('[data-field="env"] .jp-condasvc-field-error')).toHaveCount(0);
    await form.locator('input[name="name"]').fill(RTICK);
    await form.locator('select[name="kind"]').selectOption('command');
    await form
      .locator('input[name="argv"]')
      .fill("bash -c 'for i in $(seq 1 600); do echo remote tick $i; sleep 1; done'");
    // The unit preview answers (POST preview?host=).
    await expect(page.locator('.jp-condasvc-form-preview')).toContainText(`${RTICK}.service`, { timeout: 30000 });
    await form.locator('button[type="submit"]').click();
    const view = page.locator(`.jp-condasvc-details[data-name="${RTICK}"][data-host="${REAL}"]`);
    await expect(view).toBeVisible({ timeout: 30000 });
    const item = page.locator(`.jp-condasvc-item[data-name="${RTICK}"][data-host="${REAL}"]`);
    await expect(item.locator('.jp-condasvc-host-badge')).toHaveText(REAL);
    // Started after create (the startAfterCreate setting, on by default).
    await expect(view).toHaveAttribute('data-state', 'running', { timeout: 60000 });
    await expect(item).toHaveAttribute('data-state', 'running', { timeout: 30000 });
    await expect(view.locator('.jp-condasvc-logs-scroller')).toContainText('remote tick 3', { timeout: 60000 });
    await shots(page, 'real-running');
    await view.getByRole('button', { name: 'Stop', exact: true }).click();
    await expect(item).toHaveAttribute('data-state', 'stopped', { timeout: 60000 });
    // Its run history, read on that host.
    await expect(view.locator('.jp-condasvc-runs tr[data-run]').first()).toBeVisible({ timeout: 30000 });
    const runs = await request.get(`/condasvc/api/services/${RTICK}/runs?host=${REAL}`);
    expect(runs.status()).toBe(200);
    expect((await runs.json()).runs.length).toBeGreaterThan(0);
    // The host filter shows it alone; the same name is not a local service.
    await page.getByLabel('Host', { exact: true }).selectOption(REAL);
    await expect(page.locator(`.jp-condasvc-item[data-host="${REAL}"]`).first()).toBeVisible();
    await expect(page.locator('.jp-condasvc-item[data-host="local"]')).toHaveCount(0);
    expect((await request.get(`/condasvc/api/services/${RTICK}`)).status()).toBe(404);
    // Deleted from the panel's own command: the row goes.
    await item.locator('.jp-condasvc-item-details').click({ button: 'right' });
    await page.getByRole('menuitem', { name: 'Delete Service…' }).click();
    await page.locator('.jp-Dialog').getByRole('button', { name: 'Delete' }).click();
    await expect(item).toHaveCount(0, { timeout: 30000 });
    expect((await request.get(`/condasvc/api/services/${RTICK}?host=${REAL}`)).status()).toBe(404);
  });

  test('1,000 services on three hosts, one down: screenshots', async ({ page }) => {
    await page.sidebar.openTab('jp-condasvc-panel');
    await expect(page.locator('.jp-condasvc-panel')).toBeVisible();
    await page.evaluate(async host => {
      type Model = { handle(m: unknown): void };
      const panel = Array.from(window.jupyterapp.shell.widgets('left')).find(
        w => w.id === 'jp-condasvc-panel'
      ) as unknown as { _options: { model: Model } };
      const model = panel._options.model;
      const hosts = ['local', 'gpu2', host];
      const states = ['active', 'active', 'inactive', 'failed', 'active'];
      const now = Date.now();
      const services = Array.from({ length: 1000 }, (_, i) => {
        const on = hosts[i % 3];
        const active = states[i % states.length];
        return {
          name: `svc-${String(Math.floor(i / 3)).padStart(3, '0')}`,
          host: on,
          ...(on === host ? { stale: true, stale_reason: `ssh: Could not resolve hostname ${host}` } : {}),
          unit: `x-svc-${i}.service`,
          spec: { name: `svc-${i}`, kind: i % 7 ? 'script' : 'notebook', env: ['ml', 'etl'][i % 2], path: 'a.py' },
          resolved: { env_name: ['ml', 'etl'][i % 2] },
          status: {
            load_state: 'loaded',
            active_state: active,
            sub_state: active === 'active' ? 'running' : active === 'failed' ? 'failed' : 'dead',
            result: active === 'failed' ? 'exit-code' : 'success',
            unit_file_state: 'enabled',
            main_pid: active === 'active' ? 1000 + i : null,
            n_restarts: 0,
            exec_main_status: active === 'failed' ? 1 : 0,
            exec_main_code: 1,
            active_enter_timestamp: new Date(now - i * 60000).toISOString(),
            inactive_enter_timestamp: new Date(now - i * 1000).toISOString(),
            memory_current: (i % 50) * 1048576 + 4096,
            cpu_usage_nsec: i * 1e9
          }
        };
      });
      model.handle({
        type: 'snapshot',
        services,
        hosts: [
          { name: 'local', state: 'up', error: null },
          { name: 'gpu2', state: 'up', error: null },
          {
            name: host,
            state: 'down',
            error: {
              message: `ssh: Could not resolve hostname ${host}. Check that the host is up.`,
              kind: 'unreachable',
              fix: 'Check that the host is up.'
            }
          }
        ]
      });
      await new Promise(r => setTimeout(r, 1500));
      document.querySelectorAll<HTMLElement>('.Toastify__close-button').forEach(b => b.click());
    }, HOST);
    await page.getByLabel('Sort by').selectOption('name');
    // A real service's push may join the fed list (as in sidebar.spec.ts): 1000 or a few more.
    await expect(page.locator('.jp-condasvc-shown')).toContainText(/^100\d services$/);
    const stale = page.locator(`.jp-condasvc-item.jp-condasvc-item-stale[data-host="${HOST}"]`).first();
    await expect(stale).toHaveAttribute('title', /Could not resolve hostname/);
    // its actions wait for the host (they would only answer its error); its log tab still opens
    const actions = stale.locator('.jp-condasvc-item-actions button');
    await expect(actions.first()).toBeDisabled();
    await expect(actions.last()).toBeEnabled();
    await expect(actions.last()).toHaveAttribute('aria-label', 'Logs');
    await shots(page, 'many');
    await page.getByLabel('Host', { exact: true }).selectOption('gpu2');
    await expect(page.locator('.jp-condasvc-shown')).toHaveText(/^333 of 100\d shown$/);
    await shots(page, 'many-gpu2');
  });
});
