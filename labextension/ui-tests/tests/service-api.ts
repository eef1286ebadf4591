/**
 * What several specs do the same way: create and remove a service through the
 * REST API, and open a service's tab from the sidebar.
 */
import { expect, IJupyterLabPageFixture } from '@jupyterlab/galata';
import type { APIRequestContext, Locator } from '@playwright/test';

/** POST the spec; the test fails with the server's answer unless it is a 201. */
export async function createService(request: APIRequestContext, spec: Record<string, unknown>): Promise<void> {
  const response = await request.post('/condasvc/api/services', { data: spec });
  expect(response.status(), await response.text()).toBe(201);
}

/** Delete the service if it exists (for afterAll: a failed test may not have created it). */
export async function removeService(request: APIRequestContext, name: string): Promise<void> {
  await request.delete(`/condasvc/api/services/${name}`).catch(() => undefined);
}

/** Open the sidebar, click the service NAME, and return its tab. */
export async function openService(page: IJupyterLabPageFixture, name: string): Promise<Locator> {
  await page.sidebar.openTab('jp-condasvc-panel');
  await page.locator(`.jp-condasvc-item[data-name="${name}"] .jp-condasvc-item-name`).click();
  return page.locator(`.jp-condasvc-details[data-name="${name}"]`);
}
