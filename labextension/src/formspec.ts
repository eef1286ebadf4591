/**
 * The service form's state and its mapping to and from a ServiceSpec (pure),
 * and which form row an error belongs to, whether the browser or the server
 * found it.
 */
import { joinArgs, splitArgs } from './format';
import type { IHealthCheck, IServiceSpec, Kind, RestartPolicy } from './tokens';

export interface IVariable {
  key: string;
  value: string;
  shown: boolean;
  /** Write-only: the API never answers its value (spec.secrets). */
  secret?: boolean;
  /** A secret the server already holds: empty means "keep it". */
  stored?: boolean;
}

/** Everything the form edits, as the text the inputs hold. */
export interface IFormState {
  name: string;
  kind: Kind;
  env: string;
  path: string;
  command: string;
  args: string;
  cwd: string;
  description: string;
  variables: IVariable[];
  restart: '' | RestartPolicy;
  restartSec: string;
  burst: string;
  interval: string;
  memoryMax: string;
  cpuQuota: string;
  enabled: boolean;
  schedule: string;
  activation: boolean;
  restartOnChange: boolean;
  healthType: '' | 'http' | 'tcp';
  healthUrl: string;
  healthHost: string;
  healthPort: string;
  healthInterval: string;
  healthTimeout: string;
  healthStart: string;
  healthThreshold: string;
  parameters: string;
  output: string;
}

/** The spec's fields the form has a row for (a server error naming another shows above the form). */
export const SPEC_FIELDS = new Set([
  'name',
  'kind',
  'env',
  'path',
  'argv',
  'args',
  'cwd',
  'description',
  'environment',
  'restart',
  'restart_sec',
  'start_limit_burst',
  'start_limit_interval_sec',
  'memory_max',
  'cpu_quota',
  'enabled',
  'schedule',
  'activation',
  'health_check',
  'parameters',
  'output'
]);

/** The rows of the health check's parts: health_check.<key> in the spec -> the row's field. */
export const HEALTH_ROWS: Readonly<Record<keyof Omit<IHealthCheck, 'type'>, string>> = {
  url: 'health_url',
  host: 'health_host',
  port: 'health_port',
  interval_sec: 'health_interval',
  timeout_sec: 'health_timeout',
  start_period_sec: 'health_start',
  failure_threshold: 'health_threshold'
};

export function formFromSpec(spec: Partial<IServiceSpec>): IFormState {
  const hc = spec.health_check;
  const num = (v: number | null | undefined) => (v === null || v === undefined ? '' : String(v));
  return {
    name: spec.name ?? '',
    kind: spec.kind ?? 'script',
    env: spec.env ?? '',
    path: spec.path ?? '',
    command: spec.argv ? joinArgs(spec.argv) : '',
    args: spec.args ? joinArgs(spec.args) : '',
    cwd: spec.cwd ?? '',
    description: spec.description ?? '',
    variables: Object.entries(spec.environment ?? {}).map(([key, value]) => {
      const secret = (spec.secrets ?? []).includes(key);
      return { key, value: value ?? '', shown: !secret, secret, stored: secret };
    }),
    restart: spec.restart ?? '',
    restartSec: num(spec.restart_sec),
    burst: num(spec.start_limit_burst),
    interval: num(spec.start_limit_interval_sec),
    memoryMax: spec.memory_max ?? '',
    cpuQuota: spec.cpu_quota ?? '',
    enabled: spec.enabled ?? false,
    schedule: spec.schedule ?? '',
    activation: spec.activation ?? false,
    restartOnChange: spec.restart_on_change ?? false,
    healthType: hc?.type ?? '',
    healthUrl: hc?.url ?? '',
    healthHost: hc?.host ?? '',
    healthPort: num(hc?.port),
    healthInterval: num(hc?.interval_sec),
    healthTimeout: num(hc?.timeout_sec),
    healthStart: num(hc?.start_period_sec),
    healthThreshold: num(hc?.failure_threshold),
    parameters: spec.parameters && Object.keys(spec.parameters).length ? JSON.stringify(spec.parameters, null, 2) : '',
    output: spec.output ?? ''
  };
}

/** A field the browser can already tell is wrong, before the server does. */
export class LocalFieldError extends Error {
  constructor(
    readonly field: string,
    message: string
  ) {
    super(message);
  }
}

/** A number typed into a row, null when empty; `name` is how the message calls it. */
function numberOf(field: string, text: string, name = field): number | null {
  if (text.trim() === '') {
    return null;
  }
  const n = Number(text);
  if (!Number.isFinite(n)) {
    throw new LocalFieldError(field, `${name} must be a number`);
  }
  return n;
}

function textOf(v: string): string | null {
  return v.trim() === '' ? null : v.trim();
}

function healthFromForm(f: IFormState): IHealthCheck | null {
  if (!f.healthType) {
    return null;
  }
  const hc: IHealthCheck = { type: f.healthType };
  if (f.healthType === 'http') {
    if (!f.healthUrl.trim()) {
      throw new LocalFieldError(HEALTH_ROWS.url, 'Type the URL to probe, e.g. http://127.0.0.1:8080/health.');
    }
    hc.url = textOf(f.healthUrl);
  } else {
    hc.host = textOf(f.healthHost);
    if (!f.healthPort.trim()) {
      throw new LocalFieldError(HEALTH_ROWS.port, 'Type the port to probe.');
    }
    hc.port = numberOf(HEALTH_ROWS.port, f.healthPort);
  }
  const extra: ['interval_sec' | 'timeout_sec' | 'start_period_sec' | 'failure_threshold', string][] = [
    ['interval_sec', f.healthInterval],
    ['timeout_sec', f.healthTimeout],
    ['start_period_sec', f.healthStart],
    ['failure_threshold', f.healthThreshold]
  ];
  for (const [key, value] of extra) {
    const n = numberOf(HEALTH_ROWS[key], value, `health_check.${key}`);
    if (n !== null) {
      hc[key] = n;
    }
  }
  return hc;
}

function parametersOf(text: string): Record<string, unknown> {
  if (!text.trim()) {
    return {};
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new LocalFieldError('parameters', `Parameters must be a JSON object: ${(e as Error).message}`);
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new LocalFieldError('parameters', 'Parameters must be a JSON object, e.g. {"alpha": 0.5}');
  }
  return parsed as Record<string, unknown>;
}

/** The spec the form describes (empty optional fields are null, so an edit resets them). */
export function specFromForm(f: IFormState): IServiceSpec {
  const environment: Record<string, string> = {};
  for (const v of f.variables) {
    if (v.key.trim()) {
      environment[v.key.trim()] = v.value;
    }
  }
  const spec: IServiceSpec = {
    name: f.name.trim(),
    kind: f.kind,
    env: f.env,
    path: f.kind === 'command' ? null : textOf(f.path),
    argv: f.kind === 'command' ? (f.command.trim() ? splitArgs(f.command) : null) : null,
    args: splitArgs(f.args),
    cwd: textOf(f.cwd),
    description: f.description.trim(),
    environment,
    secrets: f.variables.filter(v => v.secret && v.key.trim()).map(v => v.key.trim()),
    restart: f.restart || null,
    restart_sec: numberOf('restart_sec', f.restartSec),
    start_limit_burst: numberOf('start_limit_burst', f.burst),
    start_limit_interval_sec: numberOf('start_limit_interval_sec', f.interval),
    memory_max: textOf(f.memoryMax),
    cpu_quota: textOf(f.cpuQuota),
    enabled: f.enabled,
    schedule: textOf(f.schedule),
    activation: f.activation,
    restart_on_change: f.kind !== 'command' && f.restartOnChange,
    health_check: healthFromForm(f)
  };
  if (f.kind === 'notebook') {
    spec.parameters = parametersOf(f.parameters);
    spec.output = textOf(f.output);
  }
  return spec;
}

/** The body of PATCH services/{name} for an edit: the whole spec but its name (which cannot change). */
export function editPatch(spec: IServiceSpec): Omit<IServiceSpec, 'name'> {
  const { name, ...patch } = spec; // eslint-disable-line @typescript-eslint/no-unused-vars
  return patch;
}

/**
 * The form row of an error the server answered: its `field` without sub-keys
 * ("environment.FOO" -> "environment"); for `health_check`, the part the
 * message names ("health_check.port must be ..." -> the Port row), else the
 * Probe row. Null when the answer names no field.
 */
export function errorRow(field: string | null | undefined, message: string): string | null {
  if (!field) {
    return null;
  }
  const top = field.split('.')[0].split('[')[0];
  if (top !== 'health_check') {
    return top;
  }
  const part =
    /health_check\.([a-z_]+)/.exec(field) ??
    /health_check\.([a-z_]+)/.exec(message) ??
    /needs '([a-z_]+)'/.exec(message);
  const key = part?.[1];
  return key && Object.prototype.hasOwnProperty.call(HEALTH_ROWS, key)
    ? HEALTH_ROWS[key as keyof typeof HEALTH_ROWS]
    : top;
}
