/**
 * Hostile service output in the log viewer (issue 16, finding 5): a real
 * service prints lines of thousands of alternating styles, OSC titles and
 * hyperlinks, and 32 KB lines. The view must stay cheap (what one line may
 * cost is capped: characters shown, styled pieces, merged adjacent pieces),
 * show no raw escape text, keep its buffer within its byte cap, and leave
 * Lab responsive.
 */
import { expect, galata, IJupyterLabPageFixture, test } from '@jupyterlab/galata';

const suffix = Date.now().toString(36).slice(-5);
const NAME = `hostile-${suffix}`;

// 300 lines of '\e[1mx\e[31my' * 4000 (the repro), OSC sequences, 20 lines of 32 KB, then a marker.
const SCRIPT = [
  'import sys, time',
  "E = '\\x1b'",
  'for i in range(300):',
  "    print(f'{i} ' + (E + '[1mx' + E + '[31my') * 4000, flush=(i % 50 == 0))",
  "print(E + ']0;PWNED-TITLE' + '\\x07' + 'osc title line', flush=True)",
  "print('see ' + E + ']8;;http://evil.example/' + '\\x07' + 'the link' + E + ']8;;' + '\\x07' + ' here', flush=True)",
  "print('unterminated ' + E + ']0;never ends', flush=True)",
  'for i in range(20):',
  "    print('big ' + 'z' * 32768, flush=True)",
  "print('hostile done', flush=True)",
  'time.sleep(3600)'
].join('\n');

test.use({ autoGoto: true });

async function openService(page: IJupyterLabPageFixture, name: string): Promise<void> {
  await page.evaluate(async n => {
    await window.jupyterapp.commands.execute('condasvc:open-service', { name: n });
  }, name);
}

test.describe.serial('hostile log output', () => {
  test.afterAll(async ({ request }) => {
    await request.delete(`/condasvc/api/services/${NAME}`).catch(() => undefined);
  });

  test('styled floods, OSC and 32 KB lines stay cheap, and Lab stays responsive', async ({ page, request }) => {
    const put = await request.put(`/api/contents/${NAME}.py`, {
      data: { type: 'file', format: 'text', content: SCRIPT }
    });
    expect(put.ok()).toBeTruthy();
    const created = await request.post('/condasvc/api/services', {
      data: { name: NAME, kind: 'script', env: 'uienv', path: `${NAME}.py`, restart: 'no' }
    });
    expect(created.status()).toBe(201);
    const started = await request.post(`/condasvc/api/services/${NAME}/start`);
    expect(started.status()).toBe(200);

    // all of it in the journal first: the view then loads it as one history page (a live follower
    // that falls this far behind is sent a 'dropped' note instead, by design)
    await expect
      .poll(
        async () => {
          const r = await request.get(`/condasvc/api/services/${NAME}/logs?text=hostile%20done&n=1`);
          return r.ok() ? ((await r.json()) as { entries: unknown[] }).entries.length : 0;
        },
        { timeout: 60000 }
      )
      .toBe(1);
    await openService(page, NAME);
    const view = page.locator(`.jp-condasvc-details[data-name="${NAME}"]`);
    const scroller = view.locator('.jp-condasvc-logs-scroller');
    await expect(scroller).toContainText('hostile done', { timeout: 60000 });

    // OSC sequences are stripped, not shown as text
    await expect(scroller).toContainText('the link here');
    await expect(scroller).not.toContainText(']0;');
    await expect(scroller).not.toContainText('8;;http');
    await expect(scroller).not.toContainText('PWNED-TITLE');
    // a 32 KB line shows its start and says how much was left out
    await expect(view.locator('.jp-condasvc-omitted').first()).toContainText('more characters');

    // what the page holds is bounded: rows on screen x pieces per row
    const cost = await page.evaluate(n => {
      const root = document.querySelector(
        `.jp-condasvc-details[data-name="${n}"] .jp-condasvc-logs-scroller`
      ) as HTMLElement;
      const lines = root.querySelectorAll('.jp-condasvc-logline');
      let maxSpans = 0;
      lines.forEach(l => {
        maxSpans = Math.max(maxSpans, l.querySelectorAll('span').length);
      });
      return { lines: lines.length, spans: root.querySelectorAll('span').length, maxSpans };
    }, NAME);
    test.info().annotations.push({ type: 'DOM cost', description: JSON.stringify(cost) });
    expect(cost.maxSpans).toBeLessThanOrEqual(64 + 4); // MAX_SEGMENTS, plus stamp, origin and omitted notes
    expect(cost.spans).toBeLessThan(cost.lines * 70);

    // scroll into the styled flood and search it: both answer, and Lab still opens a menu
    await scroller.evaluate(el => {
      el.scrollTop = 0;
      el.dispatchEvent(new Event('scroll'));
    });
    // following, but parked away from the end: the indicator says so instead of 'live'
    await expect(view.locator('.jp-condasvc-follow-state')).toHaveAttribute('data-state', 'parked');
    await view.locator('input.jp-condasvc-search').fill('xyxy');
    await expect(view.locator('.jp-condasvc-matches')).toContainText('match');
    // a match inside red text is dark on the highlight, in the dark theme too
    await page.evaluate(() =>
      window.jupyterapp.commands.execute('apputils:change-theme', { theme: 'JupyterLab Dark' })
    );
    await expect(page.locator('body')).toHaveAttribute('data-jp-theme-light', 'false');
    const mark = view.locator('.ansi-red-fg mark.jp-condasvc-mark').first();
    await expect(mark).toHaveCSS('color', 'rgb(0, 0, 0)');
    await view.screenshot({ path: test.info().outputPath('hostile-search-dark.png') });
    await page.evaluate(() =>
      window.jupyterapp.commands.execute('apputils:change-theme', { theme: 'JupyterLab Light' })
    );
    await expect(page.locator('body')).toHaveAttribute('data-jp-theme-light', 'true');
    await view.locator('input.jp-condasvc-search').fill('');
    // the .log download has no escape sequences
    const text = await (await request.get(`/condasvc/api/services/${NAME}/logs?format=text&n=400`)).text();
    expect(text).toContain('the link here');
    expect(text.includes('\x1b')).toBe(false);
    await page.locator('.lm-MenuBar-itemLabel', { hasText: 'File' }).first().click();
    await expect(page.locator('.lm-Menu').first()).toBeVisible();
    await page.keyboard.press('Escape');

    // the buffer is capped in bytes, not only rows: 2000 more 32 KB lines pushed at once
    const held = await page.evaluate(n => {
      type Follower = { handle(m: unknown): void; buffer: { length: number; bytes: number; maxBytes: number } };
      const widget = Array.from(window.jupyterapp.shell.widgets('main')).find(
        w => w.id === `jp-condasvc-service-${n}`
      ) as unknown as {
        content: { follower: Follower };
      };
      const follower = widget.content.follower;
      const base = Date.now() * 1000;
      const line = 'q'.repeat(32768);
      for (let k = 0; k < 10; k++) {
        const entries = Array.from({ length: 200 }, (_, i) => ({
          cursor: `flood-${k}-${i}`,
          realtime: new Date(base / 1000).toISOString(),
          realtime_usec: base + k * 200 + i,
          priority: 6,
          pid: 1,
          identifier: 'x',
          source: 'service',
          message: line
        }));
        follower.handle({ type: 'entries', entries, cursor: `flood-${k}-199` });
      }
      return { bytes: follower.buffer.bytes, maxBytes: follower.buffer.maxBytes, rows: follower.buffer.length };
    }, NAME);
    test.info().annotations.push({ type: 'buffer', description: JSON.stringify(held) });
    expect(held.bytes).toBeLessThanOrEqual(held.maxBytes);
    expect(held.rows).toBeGreaterThan(1000); // lines are kept (shortened): far more than 32 MB of full lines

    await view.screenshot({ path: test.info().outputPath('hostile-log.png') });
    await page.screenshot({ path: 'test-results/hostile-log-page.png' });
    await request.post(`/condasvc/api/services/${NAME}/stop`);
  });
});

void galata;
