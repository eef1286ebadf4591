/**
 * The create / edit form of a service, with a live preview of the unit
 * (debounced POST preview) and the server's field errors shown next to
 * the field they name.
 */
import type { TranslationBundle } from '@jupyterlab/translation';
import React, { useCallback, useEffect, useMemo, useRef, useState } from 'react';

import { CondaSvcAPI, CondaSvcError } from '../api';
import { joinArgs, splitArgs } from '../format';
import { defaultEnvironment, envFits, envOptionText, envProblem } from '../envchoice';
import { cronToCalendar, SCHEDULE_PRESETS, unitValue } from '../formhelp';
import type { IEnvironment, IPreview, IService, IServiceSpec, Kind, RestartPolicy } from '../tokens';

interface IVariable {
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

/** The spec the form describes (empty optional fields are null, so an edit resets them). */
export function specFromForm(f: IFormState): IServiceSpec {
  const number = (field: string, text: string): number | null => {
    if (text.trim() === '') {
      return null;
    }
    const n = Number(text);
    if (!Number.isFinite(n)) {
      throw new LocalFieldError(field, `${field} must be a number`);
    }
    return n;
  };
  const text = (v: string) => (v.trim() === '' ? null : v.trim());
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
    path: f.kind === 'command' ? null : text(f.path),
    argv: f.kind === 'command' ? (f.command.trim() ? splitArgs(f.command) : null) : null,
    args: splitArgs(f.args),
    cwd: text(f.cwd),
    description: f.description.trim(),
    environment,
    secrets: f.variables.filter(v => v.secret && v.key.trim()).map(v => v.key.trim()),
    restart: f.restart || null,
    restart_sec: number('restart_sec', f.restartSec),
    start_limit_burst: number('start_limit_burst', f.burst),
    start_limit_interval_sec: number('start_limit_interval_sec', f.interval),
    memory_max: text(f.memoryMax),
    cpu_quota: text(f.cpuQuota),
    enabled: f.enabled,
    schedule: text(f.schedule),
    activation: f.activation,
    restart_on_change: f.kind !== 'command' && f.restartOnChange,
    health_check: null
  };
  if (f.healthType) {
    const hc: IServiceSpec['health_check'] = { type: f.healthType };
    if (f.healthType === 'http') {
      if (!f.healthUrl.trim()) {
        throw new LocalFieldError('health_url', 'Type the URL to probe, e.g. http://127.0.0.1:8080/health.');
      }
      hc.url = text(f.healthUrl);
    } else {
      hc.host = text(f.healthHost);
      if (!f.healthPort.trim()) {
        throw new LocalFieldError('health_port', 'Type the port to probe.');
      }
      hc.port = number('health_port', f.healthPort);
    }
    const extra: [keyof typeof hc, string][] = [
      ['interval_sec', f.healthInterval],
      ['timeout_sec', f.healthTimeout],
      ['start_period_sec', f.healthStart],
      ['failure_threshold', f.healthThreshold]
    ];
    for (const [key, value] of extra) {
      const n = number('health_check', value);
      if (n !== null) {
        (hc as unknown as Record<string, number>)[key] = n;
      }
    }
    spec.health_check = hc;
  }
  if (f.kind === 'notebook') {
    if (f.parameters.trim()) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(f.parameters);
      } catch (e) {
        throw new LocalFieldError('parameters', `Parameters must be a JSON object: ${(e as Error).message}`);
      }
      if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) {
        throw new LocalFieldError('parameters', 'Parameters must be a JSON object, e.g. {"alpha": 0.5}');
      }
      spec.parameters = parsed as Record<string, unknown>;
    } else {
      spec.parameters = {};
    }
    spec.output = text(f.output);
  }
  return spec;
}

export interface IServiceFormProps {
  api: CondaSvcAPI;
  trans: TranslationBundle;
  initial: Partial<IServiceSpec>;
  /** The service being edited; absent when creating. */
  editing?: string;
  /** Files under a directory of the server's contents, for path completion. */
  listFiles: (dir: string) => Promise<string[]>;
  /** Pick a file with JupyterLab's file dialog. */
  browse: (kind: Kind) => Promise<string | null>;
  onDone: (service: IService) => void;
  onCancel: () => void;
  /** Told whether the user changed anything (closing then asks first). */
  onDirty?: (dirty: boolean) => void;
}

function FieldError(props: { field: string; errors: Record<string, string> }): JSX.Element | null {
  const message = props.errors[props.field];
  return message ? (
    <div className="jp-condasvc-field-error" role="alert" data-field={props.field} id={`condasvc-error-${props.field}`}>
      {message}
    </div>
  ) : null;
}

function Row(props: {
  label: string;
  field: string;
  errors: Record<string, string>;
  help?: string;
  children: React.ReactNode;
}): JSX.Element {
  return (
    <div className={`jp-condasvc-row${props.errors[props.field] ? ' jp-mod-error' : ''}`} data-field={props.field}>
      <label className="jp-condasvc-label">
        <span>{props.label}</span>
        {props.children}
      </label>
      {props.help ? <div className="jp-condasvc-help">{props.help}</div> : null}
      <FieldError field={props.field} errors={props.errors} />
    </div>
  );
}

export function ServiceForm(props: IServiceFormProps): JSX.Element {
  const { api, trans } = props;
  const [form, setForm] = useState<IFormState>(() => {
    const f = formFromSpec(props.initial);
    // Only an edit has stored secret values to keep; a copy asks for them again.
    return props.editing ? f : { ...f, variables: f.variables.map(v => ({ ...v, stored: false })) };
  });
  const [envs, setEnvs] = useState<IEnvironment[] | null>(null);
  const [envError, setEnvError] = useState('');
  const [preview, setPreview] = useState<IPreview | null>(null);
  const [previewError, setPreviewError] = useState<{ field: string | null; message: string } | null>(null);
  const [submitErrors, setSubmitErrors] = useState<Record<string, string>>({});
  const [generalError, setGeneralError] = useState('');
  const [touched, setTouched] = useState<Set<string>>(() => new Set(Object.keys(props.initial)));
  const [busy, setBusy] = useState(false);
  const [suggestions, setSuggestions] = useState<string[]>([]);
  const previewSeq = useRef(0);
  const initialTouched = useRef(touched.size);
  const dirty = touched.size > initialTouched.current;
  useEffect(() => props.onDirty?.(dirty), [dirty]);

  const set = useCallback(<K extends keyof IFormState>(key: K, value: IFormState[K], field?: string) => {
    setForm(f => ({ ...f, [key]: value }));
    if (field) {
      setTouched(t => (t.has(field) ? t : new Set([...t, field])));
      setSubmitErrors(e => {
        if (!(field in e)) {
          return e;
        }
        const copy = { ...e };
        delete copy[field];
        return copy;
      });
    }
  }, []);

  useEffect(() => {
    let cancelled = false;
    api
      .environments()
      .then(r => {
        if (cancelled) {
          return;
        }
        setEnvs(r.environments);
        setForm(f => {
          if (f.env) {
            return f;
          }
          const choice = defaultEnvironment(r.environments, f.kind);
          return choice ? { ...f, env: choice.name } : f;
        });
      })
      .catch(e => !cancelled && setEnvError((e as Error).message));
    return () => {
      cancelled = true;
    };
  }, [api]);

  // An environment the user did not choose follows the kind (a notebook needs ipykernel).
  useEffect(() => {
    if (!envs || touched.has('env')) {
      return;
    }
    const current = envs.find(e => e.name === form.env || e.prefix === form.env);
    if (current && envFits(current, form.kind)) {
      return;
    }
    const choice = defaultEnvironment(envs, form.kind);
    if (choice && choice.name !== form.env) {
      setForm(f => ({ ...f, env: choice.name }));
    }
  }, [envs, form.kind]);

  // Path completion from the server's contents.
  useEffect(() => {
    if (form.kind === 'command') {
      return;
    }
    const dir = form.path.includes('/') ? form.path.slice(0, form.path.lastIndexOf('/')) : '';
    let cancelled = false;
    const handle = window.setTimeout(() => {
      props
        .listFiles(dir)
        .then(files => {
          if (!cancelled) {
            const suffix = form.kind === 'notebook' ? '.ipynb' : '.py';
            setSuggestions(files.filter(f => f.endsWith('/') || f.endsWith(suffix)));
          }
        })
        .catch(() => undefined);
    }, 150);
    return () => {
      cancelled = true;
      window.clearTimeout(handle);
    };
  }, [form.path, form.kind]);

  // The live unit preview, debounced.
  const localSpec = useMemo((): { spec: IServiceSpec | null; error: LocalFieldError | null } => {
    try {
      return { spec: specFromForm(form), error: null };
    } catch (e) {
      return { spec: null, error: e as LocalFieldError };
    }
  }, [form]);

  useEffect(() => {
    const { spec } = localSpec;
    if (!spec || !spec.name || !spec.env) {
      return;
    }
    const seq = ++previewSeq.current;
    const handle = window.setTimeout(() => {
      api
        .preview(spec)
        .then(p => {
          if (seq === previewSeq.current) {
            setPreview(p);
            setPreviewError(null);
          }
        })
        .catch(e => {
          if (seq === previewSeq.current) {
            const err = e as CondaSvcError;
            setPreviewError({ field: err.field ?? null, message: err.message });
          }
        });
    }, 400);
    return () => window.clearTimeout(handle);
  }, [localSpec, api]);

  const errors: Record<string, string> = { ...submitErrors };
  if (localSpec.error && !errors[localSpec.error.field] && (!localSpec.error.field.startsWith('health_') || touched.has(localSpec.error.field))) {
    errors[localSpec.error.field] = localSpec.error.message;
  }
  // The environment is preselected, so its problems show even before the user touches it.
  if (previewError?.field && (touched.has(previewError.field) || previewError.field === 'env') && !errors[previewError.field]) {
    errors[previewError.field] = previewError.message;
  }

  const submit = async (ev?: React.FormEvent) => {
    ev?.preventDefault();
    setGeneralError('');
    let spec: IServiceSpec;
    try {
      spec = specFromForm(form);
    } catch (e) {
      const err = e as LocalFieldError;
      setSubmitErrors({ [err.field]: err.message });
      return;
    }
    setBusy(true);
    try {
      let service: IService;
      if (props.editing) {
        const patch: Record<string, unknown> = { ...spec };
        delete patch.name;
        service = await api.update(props.editing, patch);
      } else {
        service = await api.create(spec);
      }
      setSubmitErrors({});
      props.onDone(service);
    } catch (e) {
      const err = e as CondaSvcError;
      const field = err.field ? err.field.split('.')[0].split('[')[0] : null;
      if (field && FIELDS.has(field)) {
        setSubmitErrors({ [field]: err.message });
        setTouched(t => new Set([...t, field]));
        window.requestAnimationFrame(() => {
          document.getElementById(`condasvc-error-${field}`)?.scrollIntoView({ block: 'center' });
        });
      } else {
        setGeneralError(err.message);
      }
    } finally {
      setBusy(false);
    }
  };

  const env = envs?.find(e => e.name === form.env || e.prefix === form.env);
  // A default is what the server renders when the field is empty: read it from the preview.
  const defaultOf = (key: string) => {
    const value = unitValue(preview?.unit, key);
    return value === null ? trans.__('default') : trans.__('default: %1', value);
  };
  const cron = cronToCalendar(form.schedule);
  const stale = !!(localSpec.error || previewError);
  const envLocalProblem = env ? envProblem(env, form.kind) : '';
  if (envLocalProblem && !errors.env) {
    errors.env = envLocalProblem;
  }
  const onChange =
    (key: keyof IFormState, field: string) =>
    (ev: React.ChangeEvent<HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement>) =>
      set(key, ev.target.value as never, field);

  return (
    <form className="jp-condasvc-form" onSubmit={submit} aria-label={trans.__('Service')}>
      <div className="jp-condasvc-form-fields">
        <h2>{props.editing ? trans.__('Edit service %1', props.editing) : trans.__('New service')}</h2>
        {generalError ? (
          <div className="jp-condasvc-banner jp-condasvc-banner-error" role="alert">
            {generalError}
          </div>
        ) : null}
        <fieldset>
          <legend>{trans.__('What to run')}</legend>
          <Row label={trans.__('Name')} field="name" errors={errors} help={trans.__('Letters, digits, "-", "_" and "."; the unit is named after it.')}>
            <input
              className="jp-mod-styled"
              name="name"
              value={form.name}
              disabled={!!props.editing}
              onChange={onChange('name', 'name')}
              placeholder="pytorch-inference-api-v1"
              autoFocus={!props.editing}
            />
          </Row>
          <Row label={trans.__('Kind')} field="kind" errors={errors}>
            <select className="jp-mod-styled" name="kind" value={form.kind} onChange={onChange('kind', 'kind')}>
              <option value="script">{trans.__('Python script')}</option>
              <option value="notebook">{trans.__('Notebook')}</option>
              <option value="command">{trans.__('Command')}</option>
            </select>
          </Row>
          {form.kind === 'command' ? (
            <Row label={trans.__('Command')} field="argv" errors={errors} help={trans.__('The program is looked up in the environment\'s bin first, e.g. "jupyter lab --no-browser".')}>
              <input className="jp-mod-styled" name="argv" value={form.command} onChange={onChange('command', 'argv')} />
            </Row>
          ) : (
            <Row label={form.kind === 'notebook' ? trans.__('Notebook') : trans.__('Script')} field="path" errors={errors}>
              <div className="jp-condasvc-inline">
                <input
                  className="jp-mod-styled"
                  name="path"
                  list="condasvc-path-suggestions"
                  value={form.path}
                  onChange={onChange('path', 'path')}
                  placeholder={form.kind === 'notebook' ? 'report.ipynb' : 'serve.py'}
                />
                <datalist id="condasvc-path-suggestions">
                  {suggestions.map(s => (
                    <option key={s} value={s} />
                  ))}
                </datalist>
                <button
                  type="button"
                  className="jp-mod-styled"
                  onClick={async () => {
                    const picked = await props.browse(form.kind);
                    if (picked) {
                      set('path', picked, 'path');
                    }
                  }}
                >
                  {trans.__('Browse…')}
                </button>
              </div>
            </Row>
          )}
          <Row label={trans.__('Environment')} field="env" errors={errors}>
            <select className="jp-mod-styled" name="env" value={env ? env.name : form.env} onChange={onChange('env', 'env')}>
              {envs === null ? <option value={form.env}>{form.env || trans.__('Loading…')}</option> : null}
              {envs && form.env && !env ? <option value={form.env}>{form.env}</option> : null}
              {(envs ?? []).map(e => (
                <option key={e.prefix} value={e.name}>
                  {envOptionText(e)}
                </option>
              ))}
            </select>
            {envError ? <div className="jp-condasvc-field-error">{envError}</div> : null}
            {envs && !envs.length ? (
              <div className="jp-condasvc-field-error">
                {trans.__('No environment was found. The server looks for its own Python, .venv and .pixi folders in its root, ~/.virtualenvs and conda installations.')}
              </div>
            ) : null}
            {env ? (
              <div className="jp-condasvc-help">
                {env.prefix}
                {form.kind === 'notebook' && !env.has_ipykernel ? ` — ${trans.__('no ipykernel: it cannot run notebooks')}` : ''}
              </div>
            ) : null}
          </Row>
          <Row label={trans.__('Arguments')} field="args" errors={errors} help={trans.__('Quoted like in a shell: --port 8080 "a b"')}>
            <input className="jp-mod-styled" name="args" value={form.args} onChange={onChange('args', 'args')} />
          </Row>
          <Row label={trans.__('Working directory')} field="cwd" errors={errors}>
            <input className="jp-mod-styled" name="cwd" value={form.cwd} onChange={onChange('cwd', 'cwd')} placeholder={trans.__('the file\'s folder')} />
          </Row>
          <Row label={trans.__('Description')} field="description" errors={errors}>
            <input className="jp-mod-styled" name="description" value={form.description} onChange={onChange('description', 'description')} />
          </Row>
          {form.kind === 'notebook' ? (
            <>
              <Row label={trans.__('Parameters (JSON)')} field="parameters" errors={errors} help={trans.__('Injected after the cell tagged "parameters".')}>
                <textarea className="jp-mod-styled" name="parameters" rows={3} value={form.parameters} onChange={onChange('parameters', 'parameters')} placeholder='{"alpha": 0.5}' />
              </Row>
              <Row label={trans.__('Executed copy')} field="output" errors={errors}>
                <input className="jp-mod-styled" name="output" value={form.output} onChange={onChange('output', 'output')} placeholder="<name>.out.ipynb" />
              </Row>
            </>
          ) : null}
        </fieldset>
        <fieldset>
          <legend>{trans.__('Variables')}</legend>
          <div className="jp-condasvc-help">{trans.__('Stored in a file only you can read, never in the unit.')}</div>
          {form.variables.map((v, i) => (
            <div className="jp-condasvc-inline jp-condasvc-variable" key={i}>
              <input
                className="jp-mod-styled"
                aria-label={trans.__('Variable name')}
                value={v.key}
                placeholder="API_KEY"
                onChange={ev => set('variables', form.variables.map((x, j) => (j === i ? { ...x, key: ev.target.value } : x)), 'environment')}
              />
              <input
                className="jp-mod-styled"
                aria-label={trans.__('Variable value')}
                type={v.shown || !v.secret ? 'text' : 'password'}
                autoComplete="off"
                value={v.value}
                placeholder={v.stored ? trans.__('unchanged (write-only)') : ''}
                onChange={ev => set('variables', form.variables.map((x, j) => (j === i ? { ...x, value: ev.target.value } : x)), 'environment')}
              />
              <label className="jp-condasvc-check jp-condasvc-secret" title={trans.__('Secret: its value is write-only, never shown again nor returned by the API')}>
                <input
                  type="checkbox"
                  name="secret"
                  checked={!!v.secret}
                  aria-label={trans.__('Secret')}
                  onChange={ev => set('variables', form.variables.map((x, j) => (j === i ? { ...x, secret: ev.target.checked, shown: !ev.target.checked } : x)), 'environment')}
                />
                {trans.__('secret')}
              </label>
              {v.secret && !v.stored ? (
                <button type="button" className="jp-mod-styled" onClick={() => set('variables', form.variables.map((x, j) => (j === i ? { ...x, shown: !x.shown } : x)))}>
                  {v.shown ? trans.__('Hide') : trans.__('Show')}
                </button>
              ) : null}
              <button type="button" className="jp-mod-styled" aria-label={trans.__('Remove variable')} onClick={() => set('variables', form.variables.filter((_, j) => j !== i), 'environment')}>
                ×
              </button>
            </div>
          ))}
          <button type="button" className="jp-mod-styled" onClick={() => set('variables', [...form.variables, { key: '', value: '', shown: true, secret: false }])}>
            {trans.__('Add variable')}
          </button>
          <FieldError field="environment" errors={errors} />
          {env && ['venv', 'virtualenv', 'uv'].includes(env.kind ?? 'conda') && !form.activation ? null : (
            <label className="jp-condasvc-check">
              <input type="checkbox" name="activation" checked={form.activation} onChange={ev => set('activation', ev.target.checked, 'activation')} />
              {trans.__('Also set what "conda activate" sets (the environment\'s activate.d scripts)')}
            </label>
          )}
          <FieldError field="activation" errors={errors} />
        </fieldset>
        <fieldset>
          <legend>{trans.__('When it runs')}</legend>
          <label className="jp-condasvc-check">
            <input type="checkbox" name="enabled" checked={form.enabled} onChange={ev => set('enabled', ev.target.checked, 'enabled')} />
            {trans.__('Start at login (and at boot when lingering is on)')}
          </label>
          {form.kind === 'command' ? null : (
            <label className="jp-condasvc-check" title={trans.__('A .path unit watches the file; each save restarts the service if it is running')}>
              <input
                type="checkbox"
                name="restart_on_change"
                checked={form.restartOnChange}
                onChange={ev => set('restartOnChange', ev.target.checked, 'restart_on_change')}
              />
              {trans.__('Restart when the file changes (each save restarts it while it runs)')}
            </label>
          )}
          <FieldError field="restart_on_change" errors={errors} />
          <Row label={trans.__('Schedule')} field="schedule" errors={errors} help={trans.__('A systemd calendar expression, e.g. daily, hourly, Mon..Fri 09:00. Empty: runs until stopped.')}>
            <div className="jp-condasvc-inline">
              <input className="jp-mod-styled" name="schedule" value={form.schedule} onChange={onChange('schedule', 'schedule')} placeholder={trans.__('empty: runs until stopped')} />
              <select
                className="jp-mod-styled jp-condasvc-presets"
                aria-label={trans.__('Schedule presets')}
                value=""
                onChange={ev => ev.target.value && set('schedule', ev.target.value, 'schedule')}
              >
                <option value="">{trans.__('Presets…')}</option>
                {SCHEDULE_PRESETS.map(([label, value]) => (
                  <option key={value} value={value}>
                    {`${trans.__(label)} (${value})`}
                  </option>
                ))}
              </select>
            </div>
            {cron ? (
              <div className="jp-condasvc-help jp-condasvc-cron-hint">
                {trans.__('This looks like cron. systemd writes it as %1', cron)}{' '}
                <button type="button" className="jp-mod-styled" onClick={() => set('schedule', cron, 'schedule')}>
                  {trans.__('Use it')}
                </button>
              </div>
            ) : null}
          </Row>
          {preview?.next_runs?.length && form.schedule ? (
            <div className="jp-condasvc-help jp-condasvc-next-runs">
              {trans.__('Next runs:')}{' '}
              {preview.next_runs.slice(0, 5).map(t => new Date(t).toLocaleString()).join(' · ')}
            </div>
          ) : null}
          <Row label={trans.__('Restart')} field="restart" errors={errors}>
            <select className="jp-mod-styled" name="restart" value={form.restart} onChange={onChange('restart', 'restart')}>
              <option value="">{trans.__('default')}</option>
              <option value="on-failure">{trans.__('on failure')}</option>
              <option value="always">{trans.__('always')}</option>
              <option value="no">{trans.__('never')}</option>
            </select>
          </Row>
          <div className="jp-condasvc-grid">
            <Row label={trans.__('Wait before restart (s)')} field="restart_sec" errors={errors}>
              <input className="jp-mod-styled" name="restart_sec" inputMode="decimal" value={form.restartSec} onChange={onChange('restartSec', 'restart_sec')} placeholder={defaultOf('RestartSec')} />
            </Row>
            <Row label={trans.__('At most … starts')} field="start_limit_burst" errors={errors}>
              <input className="jp-mod-styled" name="start_limit_burst" inputMode="numeric" value={form.burst} onChange={onChange('burst', 'start_limit_burst')} placeholder={defaultOf('StartLimitBurst')} />
            </Row>
            <Row label={trans.__('… within (s)')} field="start_limit_interval_sec" errors={errors}>
              <input className="jp-mod-styled" name="start_limit_interval_sec" inputMode="decimal" value={form.interval} onChange={onChange('interval', 'start_limit_interval_sec')} placeholder={defaultOf('StartLimitIntervalSec')} />
            </Row>
          </div>
        </fieldset>
        <fieldset>
          <legend>{trans.__('Limits')}</legend>
          <div className="jp-condasvc-grid">
            <Row label={trans.__('Memory')} field="memory_max" errors={errors} help="512M, 2G, 50%">
              <input className="jp-mod-styled" name="memory_max" value={form.memoryMax} onChange={onChange('memoryMax', 'memory_max')} />
            </Row>
            <Row label={trans.__('CPU')} field="cpu_quota" errors={errors} help={trans.__('50% is half a core')}>
              <input className="jp-mod-styled" name="cpu_quota" value={form.cpuQuota} onChange={onChange('cpuQuota', 'cpu_quota')} />
            </Row>
          </div>
          {(preview?.warnings ?? []).map(w => (
            <div key={w} className="jp-condasvc-banner jp-condasvc-banner-warn jp-condasvc-limit-warning">
              {w}
            </div>
          ))}
        </fieldset>
        <fieldset>
          <legend>{trans.__('Health check')}</legend>
          <Row label={trans.__('Probe')} field="health_check" errors={errors} help={trans.__('A service that stays unhealthy is restarted.')}>
            <select className="jp-mod-styled" name="health_type" value={form.healthType} onChange={onChange('healthType', 'health_check')}>
              <option value="">{trans.__('none')}</option>
              <option value="http">HTTP</option>
              <option value="tcp">TCP</option>
            </select>
          </Row>
          {form.healthType === 'http' ? (
            <Row label="URL" field="health_url" errors={errors}>
              <input className="jp-mod-styled" name="health_url" value={form.healthUrl} onChange={onChange('healthUrl', 'health_url')} placeholder="http://127.0.0.1:8080/health" />
            </Row>
          ) : null}
          {form.healthType === 'tcp' ? (
            <div className="jp-condasvc-grid">
              <Row label={trans.__('Host')} field="health_host" errors={errors}>
                <input className="jp-mod-styled" name="health_host" value={form.healthHost} onChange={onChange('healthHost', 'health_check')} placeholder="127.0.0.1" />
              </Row>
              <Row label={trans.__('Port')} field="health_port" errors={errors}>
                <input className="jp-mod-styled" name="health_port" inputMode="numeric" value={form.healthPort} onChange={onChange('healthPort', 'health_port')} />
              </Row>
            </div>
          ) : null}
          {form.healthType ? (
            <div className="jp-condasvc-grid">
              <Row label={trans.__('Every (s)')} field="health_interval" errors={errors}>
                <input className="jp-mod-styled" inputMode="decimal" value={form.healthInterval} onChange={onChange('healthInterval', 'health_check')} placeholder="10" />
              </Row>
              <Row label={trans.__('Timeout (s)')} field="health_timeout" errors={errors}>
                <input className="jp-mod-styled" inputMode="decimal" value={form.healthTimeout} onChange={onChange('healthTimeout', 'health_check')} placeholder="3" />
              </Row>
              <Row label={trans.__('Grace (s)')} field="health_start" errors={errors}>
                <input className="jp-mod-styled" inputMode="decimal" value={form.healthStart} onChange={onChange('healthStart', 'health_check')} placeholder="30" />
              </Row>
              <Row label={trans.__('Failures')} field="health_threshold" errors={errors}>
                <input className="jp-mod-styled" inputMode="numeric" value={form.healthThreshold} onChange={onChange('healthThreshold', 'health_check')} placeholder="3" />
              </Row>
            </div>
          ) : null}
        </fieldset>
        <div className="jp-condasvc-form-buttons">
          <button type="button" className="jp-mod-styled jp-mod-reject" onClick={props.onCancel}>
            {trans.__('Cancel')}
          </button>
          <button type="submit" className="jp-mod-styled jp-mod-accept jp-condasvc-submit" disabled={busy}>
            {props.editing ? trans.__('Save') : trans.__('Create')}
          </button>
        </div>
      </div>
      <div className="jp-condasvc-form-preview">
        <h3>{preview ? preview.unit_name : trans.__('Unit preview')}</h3>
        {previewError && !previewError.field ? <div className="jp-condasvc-field-error">{previewError.message}</div> : null}
        {previewError?.field ? (
          <div className="jp-condasvc-help">{trans.__('Preview: %1', previewError.message)}</div>
        ) : null}
        {stale && preview ? (
          <div className="jp-condasvc-banner jp-condasvc-banner-warn jp-condasvc-preview-stale" role="status">
            {trans.__('Out of date: this is the unit before your last change, which has an error%1.', localSpec.error ? ` (${localSpec.error.field})` : previewError?.field ? ` (${previewError.field})` : '')}
          </div>
        ) : null}
        <pre className={`jp-condasvc-unit${stale && preview ? ' jp-mod-stale' : ''}`} aria-label={trans.__('Unit preview')}>
          {preview ? preview.unit : trans.__('Fill in a name and an environment to see the unit.')}
        </pre>
        {preview?.timer ? (
          <>
            <h3>{preview.unit_name.replace(/\.service$/, '.timer')}</h3>
            <pre className="jp-condasvc-unit" aria-label={trans.__('Timer preview')}>{preview.timer}</pre>
          </>
        ) : null}
        {preview?.path_unit ? (
          <>
            <h3>{preview.unit_name.replace(/\.service$/, '.path')}</h3>
            <pre className="jp-condasvc-unit" aria-label={trans.__('Path unit preview')}>{preview.path_unit}</pre>
          </>
        ) : null}
        {preview?.variables.length ? (
          <div className="jp-condasvc-help">
            {trans.__('Environment file: %1 (values not shown)', preview.variables.join(', '))}
          </div>
        ) : null}
        {preview && Object.keys(preview.activation).length ? (
          <div className="jp-condasvc-help">
            {trans.__('From activate.d: %1', Object.keys(preview.activation).join(', '))}
          </div>
        ) : null}
      </div>
    </form>
  );
}

const FIELDS = new Set([
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
