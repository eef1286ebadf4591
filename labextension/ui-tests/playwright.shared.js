/**
 * What every Playwright configuration here shares (playwright.config.js for
 * Galata, playwright.hub.config.js for the Hub): the run policy and Debian's
 * Chromium.
 */
module.exports = {
  // Under CI a failed test runs once more and, if it then passes, is reported as "flaky" (scripts/test's
  // summary lists it): these drive a real browser against a real systemd on a 2-core machine.
  retries: process.env.CI ? 1 : 0,
  workers: 1,
  use: {
    viewport: { width: 1400, height: 900 },
    video: 'off',
    trace: 'retain-on-failure',
    launchOptions: {
      executablePath: process.env.CONDASVC_CHROMIUM || '/usr/bin/chromium',
      args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage']
    }
  }
};
