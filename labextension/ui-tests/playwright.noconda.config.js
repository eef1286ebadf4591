/**
 * The first-run test on a machine without conda (issue 12): the same server
 * configuration with CONDASVC_UI_NO_CONDA=1, which leaves out the fixture conda
 * installation, on a port of its own. Runs the first test of firstrun.spec.ts:
 * a service from examples/ started in the server's own environment.
 *
 *   jlpm playwright test -c playwright.noconda.config.js
 */
const base = require('./playwright.config');

process.env.CONDASVC_UI_NO_CONDA = '1';
const port = process.env.CONDASVC_UI_NOCONDA_PORT || String(Number(process.env.CONDASVC_UI_PORT || '8899') + 1);

module.exports = {
  ...base,
  testMatch: 'firstrun.spec.ts',
  grep: /start the example web app/,
  webServer: {
    ...base.webServer,
    command: 'jlpm start > jupyter-server-noconda.log 2>&1',
    url: `http://localhost:${port}/lab`,
    env: { ...process.env, CONDASVC_UI_PORT: port, CONDASVC_UI_NO_CONDA: '1' }
  },
  use: { ...base.use, baseURL: `http://localhost:${port}` }
};
