/**
 * The hosts test (issue 15): the same server configuration with one configured host that
 * cannot be reached and, when scripts/test set up its sshd (CONDASVC_SSH_HOST, an alias in
 * ~/.ssh/config, and CONDASVC_SSH_PYTHON, a Python with jupyter_condasvc the remote account
 * can run), a real one; CONDASVC_UI_HOSTS and CONDASVC_UI_BRIDGE carry them to
 * jupyter_server_test_config.py. On a port of its own. Runs hosts/*.hosts.ts.
 *
 *   jlpm playwright test -c playwright.hosts.config.js
 */
const base = require('./playwright.config');

process.env.CONDASVC_UI_HOSTS = ['nosuchhost.invalid', process.env.CONDASVC_SSH_HOST || ''].join(' ').trim();
if (process.env.CONDASVC_SSH_HOST && process.env.CONDASVC_SSH_PYTHON) {
  process.env.CONDASVC_UI_BRIDGE = `${process.env.CONDASVC_SSH_PYTHON} -m jupyter_condasvc.bridge`;
}
const port = process.env.CONDASVC_UI_HOSTS_PORT || String(Number(process.env.CONDASVC_UI_PORT || '8899') + 2);

module.exports = {
  ...base,
  testDir: 'hosts',
  // Not *.spec.ts: the default configuration (a server without hosts) runs every spec file under ui-tests/.
  testMatch: '**/*.hosts.ts',
  webServer: {
    ...base.webServer,
    command: 'jlpm start > jupyter-server-hosts.log 2>&1',
    url: `http://localhost:${port}/lab`,
    env: { ...process.env, CONDASVC_UI_PORT: port }
  },
  use: { ...base.use, baseURL: `http://localhost:${port}` }
};
