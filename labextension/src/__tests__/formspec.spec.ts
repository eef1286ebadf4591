/** The service form's spec <-> form mapping, and where an error shows. */
import { editPatch, errorRow, formFromSpec, HEALTH_ROWS, LocalFieldError, specFromForm } from '../formspec';
import type { IServiceSpec } from '../tokens';

const FULL: IServiceSpec = {
  name: 'api',
  kind: 'script',
  env: 'ml',
  path: 'serve.py',
  argv: null,
  args: ['--port', '8080', 'a b'],
  cwd: '/srv',
  description: 'the API',
  environment: { MODE: 'prod', TOKEN: 's3cret' },
  secrets: ['TOKEN'],
  restart: 'on-failure',
  restart_sec: 2.5,
  start_limit_burst: 5,
  start_limit_interval_sec: 60,
  memory_max: '2G',
  cpu_quota: '50%',
  enabled: true,
  schedule: null,
  activation: true,
  restart_on_change: true,
  health_check: {
    type: 'tcp',
    url: null,
    host: '127.0.0.1',
    port: 8080,
    interval_sec: 10,
    timeout_sec: 3,
    start_period_sec: 30,
    failure_threshold: 3
  }
};

function thrown(fn: () => unknown): LocalFieldError {
  try {
    fn();
  } catch (e) {
    return e as LocalFieldError;
  }
  throw new Error('did not throw');
}

describe('spec <-> form', () => {
  it('gives back the spec it was filled from', () => {
    const spec = specFromForm(formFromSpec(FULL));
    // the form leaves out the address part the probe type does not use
    expect(spec).toEqual({ ...FULL, health_check: { ...FULL.health_check, url: undefined } });
    expect(spec.health_check).not.toHaveProperty('url');
  });

  it('marks secrets as stored, and empty optional fields become null so an edit resets them', () => {
    const form = formFromSpec(FULL);
    expect(form.variables).toEqual([
      { key: 'MODE', value: 'prod', shown: true, secret: false, stored: false },
      { key: 'TOKEN', value: 's3cret', shown: false, secret: true, stored: true }
    ]);
    const spec = specFromForm({ ...form, cwd: ' ', restartSec: '', memoryMax: '', restart: '', healthType: '' });
    expect(spec.cwd).toBeNull();
    expect(spec.restart_sec).toBeNull();
    expect(spec.memory_max).toBeNull();
    expect(spec.restart).toBeNull();
    expect(spec.health_check).toBeNull();
  });

  it('a command has argv and no path, and never restart_on_change', () => {
    const spec = specFromForm({ ...formFromSpec(FULL), kind: 'command', command: 'jupyter lab "--ip=0.0.0.0"' });
    expect(spec.argv).toEqual(['jupyter', 'lab', '--ip=0.0.0.0']);
    expect(spec.path).toBeNull();
    expect(spec.restart_on_change).toBe(false);
  });

  it('a notebook carries its parameters as a JSON object and its output', () => {
    const form = { ...formFromSpec({ ...FULL, kind: 'notebook' }), parameters: '{"alpha": 0.5}', output: 'out.ipynb' };
    expect(specFromForm(form)).toMatchObject({ parameters: { alpha: 0.5 }, output: 'out.ipynb' });
    expect(specFromForm({ ...form, parameters: '' }).parameters).toEqual({});
    expect(thrown(() => specFromForm({ ...form, parameters: '[1]' })).field).toBe('parameters');
    expect(thrown(() => specFromForm({ ...form, parameters: '{' })).field).toBe('parameters');
  });

  it('names the row of a value the browser can already tell is wrong', () => {
    const form = formFromSpec(FULL);
    expect(thrown(() => specFromForm({ ...form, restartSec: 'soon' })).field).toBe('restart_sec');
    expect(thrown(() => specFromForm({ ...form, healthPort: '' })).field).toBe('health_port');
    expect(thrown(() => specFromForm({ ...form, healthPort: 'http' })).field).toBe('health_port');
    expect(thrown(() => specFromForm({ ...form, healthType: 'http', healthUrl: ' ' })).field).toBe('health_url');
    const timing = thrown(() => specFromForm({ ...form, healthTimeout: 'x' }));
    expect(timing.field).toBe(HEALTH_ROWS.timeout_sec);
    expect(timing.message).toContain('health_check.timeout_sec');
  });

  it('an edit sends everything but the name', () => {
    const patch = editPatch(FULL);
    expect(patch).not.toHaveProperty('name');
    expect(patch).toMatchObject({ env: 'ml', restart: 'on-failure' });
  });
});

describe('errorRow: where an error the server answered shows', () => {
  it('is the top field of the spec', () => {
    expect(errorRow('memory_max', 'x')).toBe('memory_max');
    expect(errorRow('environment.FOO', 'x')).toBe('environment');
    expect(errorRow('args[2]', 'x')).toBe('args');
    expect(errorRow(null, 'x')).toBeNull();
  });

  it('is the health row the message names (the server keys them all health_check)', () => {
    // as the server answers them (health.py's sentence behind spec.py's "Invalid 'health_check': ")
    const says = (text: string) => `Invalid 'health_check': ${text}.`;
    expect(errorRow('health_check', says('health_check.port must be a whole number from 1 to 65535, not 70000'))).toBe(
      'health_port'
    );
    expect(errorRow('health_check', says("health_check.url must start with http:// or https://, not 'ftp://h/'"))).toBe(
      'health_url'
    );
    expect(
      errorRow(
        'health_check',
        says(
          'health_check.timeout_sec (5 s) must not exceed interval_sec (2 s): a probe has to finish before the next one starts'
        )
      )
    ).toBe('health_timeout');
    expect(
      errorRow('health_check', says('health_check.failure_threshold must be a whole number from 1 to 100, not 0'))
    ).toBe('health_threshold');
    expect(errorRow('health_check', says("A tcp health check needs 'host' (e.g. \"127.0.0.1\") and 'port'"))).toBe(
      'health_host'
    );
    // about the check as a whole: the Probe row
    expect(errorRow('health_check', says('health_check.type must be "http" or "tcp", not \'udp\''))).toBe(
      'health_check'
    );
    expect(errorRow('health_check', says('health_check has unknown field(s) constructor; known: type'))).toBe(
      'health_check'
    );
  });
});
