/**
 * The extension under a real JupyterHub: log in through the Hub, open Lab at
 * /user/<name>/lab, see the Services panel; create a service with the user's
 * hub token over REST and watch it run and log in the panel (both WebSockets,
 * through configurable-http-proxy); XSRF enforced on cookie requests; another
 * hub user refused with 403; the documented c.Spawner.environment snippet
 * gives Lab terminals a working `systemctl --user`; services survive
 * "Stop My Server".
 */
import { APIRequestContext, expect, Page, request as requestFactory, test } from '@playwright/test';
import { execFileSync } from 'child_process';
import * as os from 'os';

const USER = os.userInfo().username;
const OTHER = 'hubother';
const PASSWORD = process.env.CONDASVC_HUB_PASSWORD as string;
const BASE = `http://127.0.0.1:${process.env.CONDASVC_HUB_PORT}`;
const SERVER = `/user/${USER}`;
const NAME = `hubtick-${Date.now().toString(36).slice(-5)}`;

/** An API client of the Hub acting as the tests' service (admin:users, admin:servers, tokens). */
async function hubApi(): Promise<APIRequestContext> {
  return requestFactory.newContext({
    baseURL: BASE,
    extraHTTPHeaders: { Authorization: `token ${process.env.CONDASVC_HUB_TOKEN}` }
  });
}

/** A fresh API token of a hub user, and a request context that sends it. */
async function userClient(hub: APIRequestContext, name: string): Promise<APIRequestContext> {
  let r = await hub.get(`/hub/api/users/${name}`);
  if (r.status() === 404) {
    r = await hub.post(`/hub/api/users/${name}`);
    expect(r.status(), await r.text()).toBe(201);
  }
  r = await hub.post(`/hub/api/users/${name}/tokens`, { data: { note: 'condasvc hub phase', expires_in: 3600 } });
  expect(r.status(), await r.text()).toBe(201);
  const token = (await r.json()).token as string;
  return requestFactory.newContext({ baseURL: BASE, extraHTTPHeaders: { Authorization: `token ${token}` } });
}

async function login(page: Page): Promise<void> {
  await page.goto('/hub/login');
  await page.locator('input[name="username"]').fill(USER);
  await page.locator('input[name="password"]').fill(PASSWORD);
  await page.locator('#login_submit, input[type="submit"], button[type="submit"]').first().click();
  // the Hub spawns the server (LocalProcessSpawner) and redirects to its Lab
  await page.waitForURL(`**${SERVER}/lab**`, { timeout: 150000 });
  await expect(page.locator('#jp-main-dock-panel')).toBeVisible({ timeout: 120000 });
}

async function openPanel(page: Page): Promise<void> {
  await page.locator('.jp-condasvc-status-item').click();
  await expect(page.locator('.jp-condasvc-panel-header')).toContainText('Services');
}

function systemctl(...args: string[]): string {
  try {
    return execFileSync('systemctl', ['--user', ...args], {
      encoding: 'utf-8',
      timeout: 30000,
      stdio: ['ignore', 'pipe', 'pipe']
    }).trim();
  } catch (err) {
    return String((err as { stdout?: string }).stdout ?? '').trim();
  }
}

test.describe.serial('under JupyterHub', () => {
  let hub: APIRequestContext;
  let mine: APIRequestContext;
  let unit = '';

  test.beforeAll(async () => {
    hub = await hubApi();
  });

  test.afterAll(async () => {
    if (mine) {
      await mine.delete(`${SERVER}/condasvc/api/services/${NAME}`).catch(() => undefined);
    }
    if (unit && systemctl('is-active', unit) === 'active') {
      systemctl('stop', unit); // the DELETE above failed: do not leave it running
    }
  });

  test('log in, open Lab, see the Services panel', async ({ page }) => {
    await login(page);
    await openPanel(page);
    // the manager is reachable (no unreachable banner) without any variable from the Hub but the snippet's
    await expect(page.locator('.jp-condasvc-banner-error')).toHaveCount(0);
  });

  test('a service created with a hub token runs, and its log line shows in the panel', async ({ page }) => {
    mine = await userClient(hub, USER);
    const envs = await mine.get(`${SERVER}/condasvc/api/environments`);
    expect(envs.status(), await envs.text()).toBe(200);
    const created = await mine.post(`${SERVER}/condasvc/api/services`, {
      data: { name: NAME, kind: 'script', env: 'hubenv', path: 'hubticker.py' }
    });
    expect(created.status(), await created.text()).toBe(201);
    unit = (await created.json()).unit;
    const started = await mine.post(`${SERVER}/condasvc/api/services/${NAME}/start`);
    expect([200, 409]).toContain(started.status());

    await login(page);
    await openPanel(page);
    const item = page.locator(`.jp-condasvc-item[data-name="${NAME}"]`);
    await expect(item).toHaveAttribute('data-state', 'running', { timeout: 60000 });
    await item.locator('.jp-condasvc-item-name').click();
    const view = page.locator(`.jp-condasvc-details[data-name="${NAME}"]`);
    await expect(view.locator('.jp-condasvc-logs-scroller')).toContainText('hub tick 2', { timeout: 60000 });
  });

  test('XSRF: a cookie-authenticated POST without the token is refused, with it accepted', async ({ page }) => {
    await login(page);
    const body = { name: 'draft', kind: 'script', env: 'hubenv', path: 'hubticker.py' };
    const bare = await page.request.post(`${SERVER}/condasvc/api/preview`, { data: body });
    expect(bare.status(), await bare.text()).toBe(403);
    const xsrf = (await page.context().cookies()).find(c => c.name === '_xsrf')?.value;
    expect(xsrf).toBeTruthy();
    const ok = await page.request.post(`${SERVER}/condasvc/api/preview`, {
      data: body,
      headers: { 'X-XSRFToken': xsrf as string }
    });
    expect(ok.status(), await ok.text()).toBe(200);
  });

  test("another hub user is refused with 403 on this user's server", async () => {
    const other = await userClient(hub, OTHER);
    for (const path of ['services', `services/${NAME}`, 'host']) {
      const r = await other.get(`${SERVER}/condasvc/api/${path}`);
      expect(r.status(), `${path}: ${await r.text()}`).toBe(403);
    }
    const r = await other.post(`${SERVER}/condasvc/api/services/${NAME}/stop`);
    expect(r.status()).toBe(403);
    expect(systemctl('is-active', unit)).toBe('active');
  });

  test('doctor is not red for the browser check under the Hub', async () => {
    const r = await mine.get(`${SERVER}/condasvc/api/doctor`);
    expect(r.status()).toBe(200);
    const checks = (await r.json()).checks as { id: string; ok: boolean | null; detail: string }[];
    const browser = checks.find(c => c.id === 'open-browser');
    expect(browser?.ok, browser?.detail).toBe(true);
    expect(browser?.detail).toContain('JupyterHub single-user server');
  });

  test("doctor's fix hints name the server's interpreter, not `jupyter condasvc` (not on PATH here)", async () => {
    const crash = `${NAME}-crash`;
    let r = await mine.post(`${SERVER}/condasvc/api/services`, {
      data: { name: crash, kind: 'command', env: 'hubenv', argv: ['false'], restart: 'no' }
    });
    expect(r.status(), await r.text()).toBe(201);
    try {
      await mine.post(`${SERVER}/condasvc/api/services/${crash}/start`);
      await expect
        .poll(
          async () => (await (await mine.get(`${SERVER}/condasvc/api/services/${crash}`)).json()).status.active_state,
          {
            timeout: 30000
          }
        )
        .toBe('failed');
      r = await mine.get(`${SERVER}/condasvc/api/doctor`);
      const checks = (await r.json()).checks as { id: string; ok: boolean | null; fix: string | null }[];
      const failed = checks.find(c => c.id === 'failed');
      expect(failed?.ok).toBe(false);
      const m = /`(\S+) -m jupyter_condasvc reset-failed NAME`/.exec(failed?.fix ?? '');
      expect(m, failed?.fix ?? '').not.toBeNull();
      // the single-user environment's own interpreter, which exists and runs the CLI
      expect(execFileSync(m![1], ['-m', 'jupyter_condasvc', '--help'], { encoding: 'utf-8' })).toContain('doctor');
      expect(failed?.fix).not.toContain('jupyter condasvc');
    } finally {
      await mine.delete(`${SERVER}/condasvc/api/services/${crash}`);
    }
  });

  test('a Lab terminal has a working systemctl --user (the documented snippet)', async ({ page }) => {
    await login(page);
    const out = await page.evaluate(async (server: string) => {
      const xsrf =
        document.cookie
          .split('; ')
          .find(c => c.startsWith('_xsrf='))
          ?.slice(6) ?? '';
      const r = await fetch(`${server}/api/terminals`, {
        method: 'POST',
        headers: { 'X-XSRFToken': decodeURIComponent(xsrf) }
      });
      const name = (await r.json()).name as string;
      const ws = new WebSocket(`${location.origin.replace(/^http/, 'ws')}${server}/terminals/websocket/${name}`);
      let text = '';
      const done = new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => resolve(text), 30000);
        ws.onmessage = ev => {
          const [kind, data] = JSON.parse(ev.data as string);
          if (kind === 'stdout') {
            text += data;
            if (text.includes('END-OF-CHECK')) {
              clearTimeout(timer);
              resolve(text);
            }
          }
        };
        ws.onerror = () => reject(new Error('terminal websocket failed'));
      });
      await new Promise(resolve => (ws.onopen = resolve));
      ws.send(
        JSON.stringify([
          'stdin',
          'echo "RUNTIME=$XDG_RUNTIME_DIR"; systemctl --user is-system-running; echo END-OF-""CHECK\r'
        ])
      );
      const result = await done;
      ws.close();
      await fetch(`${server}/api/terminals/${name}`, {
        method: 'DELETE',
        headers: { 'X-XSRFToken': decodeURIComponent(xsrf) }
      });
      return result;
    }, SERVER);
    expect(out).toContain(`RUNTIME=/run/user/${os.userInfo().uid}`);
    expect(out).toMatch(/\r?\n(running|degraded)\r?\n/);
  });

  test('without the variables the extension finds the bus itself; with a template it says so (503)', async ({
    page
  }) => {
    const start = async (server: string): Promise<void> => {
      const r = await hub.post(`/hub/api/users/${USER}/servers/${server}`);
      expect([201, 202], await r.text()).toContain(r.status());
      await expect
        .poll(async () => (await (await hub.get(`/hub/api/users/${USER}`)).json()).servers?.[server]?.ready ?? false, {
          timeout: 120000
        })
        .toBe(true);
    };
    try {
      await start('bare');
      let r = await mine.get(`${SERVER}/bare/condasvc/api/services`);
      expect(r.status(), await r.text()).toBe(200);
      expect(((await r.json()).services as { name: string }[]).map(s => s.name)).toContain(NAME);
      r = await mine.get(`${SERVER}/bare/condasvc/api/host`);
      expect((await r.json()).manager.reachable).toBe(true);

      await start('templated');
      r = await mine.get(`${SERVER}/templated/condasvc/api/services`);
      expect(r.status()).toBe(503);
      const message = (await r.json()).message as string;
      expect(message).toMatch(
        /^The systemd user manager is not reachable at unix:path=\/run\/user\/\{uid\}\/bus \(from \$XDG_RUNTIME_DIR\): /
      );
      expect(message).toContain('unexpanded template');
      expect(message).not.toContain('scripts/');
      // the Lab banner leads with the same cause
      await login(page);
      await page.goto(`${SERVER}/templated/lab`);
      await expect(page.locator('#jp-main-dock-panel')).toBeVisible({ timeout: 120000 });
      await openPanel(page);
      const banner = page.locator('.jp-condasvc-banner-error');
      await expect(banner).toContainText('not reachable at unix:path=/run/user/{uid}/bus (from $XDG_RUNTIME_DIR)');
      await expect(banner).toContainText('unexpanded template');
      await expect(banner).not.toContainText('scripts/');
    } finally {
      for (const server of ['bare', 'templated']) {
        await hub.delete(`/hub/api/users/${USER}/servers/${server}`, { data: { remove: true } });
      }
    }
  });

  test('the service survives "Stop My Server", and the panel shows it again after a restart', async ({ page }) => {
    const r = await hub.delete(`/hub/api/users/${USER}/server`);
    expect([202, 204], await r.text()).toContain(r.status());
    await expect
      .poll(async () => (await (await hub.get(`/hub/api/users/${USER}`)).json()).servers?.['']?.ready ?? false, {
        timeout: 60000
      })
      .toBe(false);
    expect(systemctl('is-active', unit)).toBe('active');
    await login(page); // spawns the server again
    await openPanel(page);
    await expect(page.locator(`.jp-condasvc-item[data-name="${NAME}"]`)).toHaveAttribute('data-state', 'running', {
      timeout: 60000
    });
  });
});
