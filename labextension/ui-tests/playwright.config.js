/**
 * Galata / Playwright configuration of the UI tests: Debian's Chromium, a real
 * `jupyter lab` with the extension (jupyter_server_test_config.py) running as
 * the current user against that user's systemd user manager.
 */
const baseConfig = require('@jupyterlab/galata/lib/playwright-config');
const shared = require('./playwright.shared');

const port = process.env.CONDASVC_UI_PORT || '8899';

module.exports = {
  ...baseConfig,
  reporter: [['list'], ['html', { open: 'never' }]],
  timeout: 90000,
  expect: { timeout: 20000 },
  retries: shared.retries,
  workers: shared.workers,
  webServer: {
    // The server's log goes to a file (scripts/test shows its end when a test fails).
    command: 'jlpm start > jupyter-server.log 2>&1',
    url: `http://localhost:${port}/lab`,
    timeout: 120 * 1000,
    reuseExistingServer: !process.env.CI,
    env: { ...process.env, CONDASVC_UI_PORT: port }
  },
  use: {
    ...baseConfig.use,
    ...shared.use,
    baseURL: `http://localhost:${port}`
  }
};
