/**
 * The hosts test (issue 15): the same server configuration with one configured host that
 * cannot be reached (CONDASVC_UI_HOSTS, read by jupyter_server_test_config.py into
 * CondaSvcApp.hosts), on a port of its own. Runs hosts/*.spec.ts: that host shown down with
 * its reason and fix, the Host field and filter, and the local services unaffected.
 *
 *   jlpm playwright test -c playwright.hosts.config.js
 */
const base = require('./playwright.config');

process.env.CONDASVC_UI_HOSTS = process.env.CONDASVC_UI_HOSTS || 'nosuchhost.invalid';
const port = process.env.CONDASVC_UI_HOSTS_PORT || String(Number(process.env.CONDASVC_UI_PORT || '8899') + 2);

module.exports = {
  ...base,
  testDir: 'hosts',
  testMatch: '**/*.spec.ts',
  webServer: {
    ...base.webServer,
    command: 'jlpm start > jupyter-server-hosts.log 2>&1',
    url: `http://localhost:${port}/lab`,
    env: { ...process.env, CONDASVC_UI_PORT: port, CONDASVC_UI_HOSTS: process.env.CONDASVC_UI_HOSTS }
  },
  use: { ...base.use, baseURL: `http://localhost:${port}` }
};
