/**
 * The hub phase (scripts/test with CONDASVC_HUB=1): the extension under a real
 * JupyterHub (hub/jupyterhub_config.py: LocalProcessSpawner, configurable-http-proxy),
 * driven in Debian's Chromium through the Hub's public URL.
 *
 * Plain Playwright, not Galata: Galata's fixtures talk to one server at its
 * root URL, while here the browser logs in at /hub/ and Lab lives under
 * /user/<name>/.
 */
const crypto = require('crypto');
const os = require('os');
const path = require('path');

const shared = require('./playwright.shared');

const port = process.env.CONDASVC_HUB_PORT || '8765';
// Shared with the Hub (webServer inherits this environment) and the tests.
process.env.CONDASVC_HUB_PORT = port;
process.env.CONDASVC_HUB_TOKEN = process.env.CONDASVC_HUB_TOKEN || crypto.randomBytes(24).toString('hex');
process.env.CONDASVC_HUB_PASSWORD = process.env.CONDASVC_HUB_PASSWORD || crypto.randomBytes(12).toString('hex');
process.env.CONDASVC_HUB_RUN =
  process.env.CONDASVC_HUB_RUN ||
  path.join(os.homedir(), '.cache', 'condasvc-hub', `run-${crypto.randomBytes(4).toString('hex')}`);

module.exports = {
  testDir: 'hub',
  testMatch: '**/*.hub.ts',
  reporter: [['list']],
  timeout: 180000,
  expect: { timeout: 30000 },
  retries: shared.retries,
  workers: shared.workers,
  webServer: {
    // exec: Playwright's SIGTERM reaches the Hub, which then stops the proxy and the single-user server.
    command: 'exec jupyterhub -f hub/jupyterhub_config.py > hub/jupyterhub.log 2>&1',
    url: `http://127.0.0.1:${port}/hub/health`,
    timeout: 120 * 1000,
    reuseExistingServer: false,
    gracefulShutdown: { signal: 'SIGTERM', timeout: 20000 },
    env: { ...process.env }
  },
  use: {
    ...shared.use,
    baseURL: `http://127.0.0.1:${port}`
  }
};
