/** The default environment of a new service, and how the form names one. */
import { defaultEnvironment, envFits, envOptionText, envProblem } from '../envchoice';
import { cronToCalendar, unitValue } from '../formhelp';
import type { IEnvironment } from '../tokens';

function env(name: string, extra: Partial<IEnvironment> = {}): IEnvironment {
  return {
    name,
    prefix: `/p/${name}`,
    python: `/p/${name}/bin/python`,
    python_version: '3.12.1',
    has_ipykernel: false,
    root: null,
    is_root: false,
    kind: 'conda',
    is_server: false,
    label: name,
    ...extra
  };
}

describe('default environment', () => {
  const base = env('base', { python: null, python_version: null, is_root: true });
  const server = env('/srv/venv', { kind: 'venv', is_server: true, label: "Jupyter server's environment (/srv/venv)" });
  const nb = env('nb', { has_ipykernel: true });

  it('never picks an environment without Python for scripts and notebooks', () => {
    expect(defaultEnvironment([base], 'script')).toBeNull();
    expect(defaultEnvironment([base], 'notebook')).toBeNull();
    expect(defaultEnvironment([base, nb], 'script')?.name).toBe('nb');
  });
  it('takes the first that fits, in the server order (its own first)', () => {
    expect(defaultEnvironment([server, base, nb], 'script')?.name).toBe('/srv/venv');
    expect(defaultEnvironment([server, base, nb], 'notebook')?.name).toBe('nb');
  });
  it('for a command prefers one with Python, else any', () => {
    expect(defaultEnvironment([base, nb], 'command')?.name).toBe('nb');
    expect(defaultEnvironment([base], 'command')?.name).toBe('base');
    expect(defaultEnvironment([], 'command')).toBeNull();
  });
  it('says why an environment does not fit, next to the field', () => {
    expect(envFits(base, 'command')).toBe(true);
    expect(envProblem(base, 'script')).toContain('no Python interpreter (/p/base/bin/python)');
    expect(envProblem(env('x'), 'notebook')).toContain('no ipykernel');
    expect(envProblem(nb, 'notebook')).toBe('');
  });
  it('names the kind and whether there is a Python', () => {
    expect(envOptionText(base)).toBe('base — conda · no Python');
    expect(envOptionText(nb)).toBe('nb — conda · Python 3.12.1 · ipykernel');
    expect(envOptionText(env('/x/.venv', { kind: 'uv', label: './.venv' }))).toBe('./.venv — uv venv · Python 3.12.1');
  });
});

describe('form helpers', () => {
  it('reads a default from the previewed unit', () => {
    const unit = '[Service]\nRestartSec=5\nStartLimitBurst=5\nRestartSec=7\n';
    expect(unitValue(unit, 'RestartSec')).toBe('7');
    expect(unitValue(unit, 'StartLimitIntervalSec')).toBeNull();
    expect(unitValue(null, 'RestartSec')).toBeNull();
  });
  it('turns cron lines into calendar expressions', () => {
    expect(cronToCalendar('*/5 * * * *')).toBe('*-*-* *:00/5:00');
    expect(cronToCalendar('30 2 * * *')).toBe('*-*-* 02:30:00');
    expect(cronToCalendar('0 9 * * 1-5')).toBe('Mon..Fri *-*-* 09:00:00');
    expect(cronToCalendar('0 0 1 */3 *')).toBe('*-01/3-01 00:00:00');
    expect(cronToCalendar('daily')).toBeNull();
    expect(cronToCalendar('Mon..Fri 09:00')).toBeNull();
  });
});
