/**
 * The sections of the service form, one component each: what to run, its
 * variables, when it runs, its limits, its health check, and the unit preview.
 * Each shows the errors keyed by its rows' fields.
 */
import type { TranslationBundle } from '@jupyterlab/translation';
import React from 'react';

import { envOptionText } from '../envchoice';
import { cronToCalendar, SCHEDULE_PRESETS } from '../formhelp';
import type { IFormState, IVariable, LocalFieldError } from '../formspec';
import type { IEnvironment, IPreview, Kind } from '../tokens';

/** Set one form value; `field` is the spec field it edits (marks it touched, clears its submit error). */
export type SetField = <K extends keyof IFormState>(key: K, value: IFormState[K], field?: string) => void;

export interface ISectionProps {
  form: IFormState;
  set: SetField;
  errors: Record<string, string>;
  trans: TranslationBundle;
}

type InputEvent = React.ChangeEvent<HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement>;

/** The change handler of a text input or select: its value into `key`, touching `field`. */
function changer(set: SetField) {
  return (key: keyof IFormState, field: string) => (ev: InputEvent) => set(key, ev.target.value as never, field);
}

export function FieldError(props: { field: string; errors: Record<string, string> }): JSX.Element | null {
  const message = props.errors[props.field];
  return message ? (
    <div className="jp-condasvc-field-error" role="alert" data-field={props.field} id={`condasvc-error-${props.field}`}>
      {message}
    </div>
  ) : null;
}

export function Row(props: {
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

/**
 * A row of one text input (a textarea of `rows` lines if given): `form[formKey]`, the spec field `field` (also the
 * input's name and the error's key).
 */
function TextRow(
  props: ISectionProps & {
    label: string;
    field: string;
    formKey: keyof IFormState;
    help?: string;
    placeholder?: string;
    inputMode?: 'decimal' | 'numeric';
    rows?: number;
    disabled?: boolean;
    autoFocus?: boolean;
  }
): JSX.Element {
  const { form, set, errors, field, formKey } = props;
  const input = {
    className: 'jp-mod-styled',
    name: field,
    value: form[formKey] as string,
    onChange: (ev: InputEvent) => set(formKey, ev.target.value as never, field),
    placeholder: props.placeholder
  };
  return (
    <Row label={props.label} field={field} errors={errors} help={props.help}>
      {props.rows ? (
        <textarea {...input} rows={props.rows} />
      ) : (
        <input {...input} inputMode={props.inputMode} disabled={props.disabled} autoFocus={props.autoFocus} />
      )}
    </Row>
  );
}

/** A row of one select: `form[formKey]` among OPTIONS ([value, label]); the select's name is NAME or `field`. */
function SelectRow(
  props: ISectionProps & {
    label: string;
    field: string;
    formKey: keyof IFormState;
    options: [string, string][];
    name?: string;
    help?: string;
  }
): JSX.Element {
  const { form, set, errors, field, formKey } = props;
  return (
    <Row label={props.label} field={field} errors={errors} help={props.help}>
      <select
        className="jp-mod-styled"
        name={props.name ?? field}
        value={form[formKey] as string}
        onChange={ev => set(formKey, ev.target.value as never, field)}
      >
        {props.options.map(([value, label]) => (
          <option key={value} value={value}>
            {label}
          </option>
        ))}
      </select>
    </Row>
  );
}

/** A checkbox of the boolean `form[formKey]`, the spec field `field` (also the input's name). */
function CheckBox(
  props: ISectionProps & { label: string; field: string; formKey: keyof IFormState; title?: string }
): JSX.Element {
  const { form, set, field, formKey } = props;
  return (
    <label className="jp-condasvc-check" title={props.title}>
      <input
        type="checkbox"
        name={field}
        checked={form[formKey] as boolean}
        onChange={ev => set(formKey, ev.target.checked as never, field)}
      />
      {props.label}
    </label>
  );
}

export function WhatSection(
  props: ISectionProps & {
    editing?: string;
    envs: IEnvironment[] | null;
    /** The listed environment chosen, if any. */
    env: IEnvironment | undefined;
    envError: string;
    suggestions: string[];
    browse: (kind: Kind) => Promise<string | null>;
  }
): JSX.Element {
  const { form, set, errors, trans, env, envs } = props;
  const onChange = changer(set);
  return (
    <fieldset>
      <legend>{trans.__('What to run')}</legend>
      <TextRow
        {...props}
        label={trans.__('Name')}
        field="name"
        formKey="name"
        help={trans.__('Letters, digits, "-", "_" and "."; the unit is named after it.')}
        placeholder="pytorch-inference-api-v1"
        disabled={!!props.editing}
        autoFocus={!props.editing}
      />
      <SelectRow
        {...props}
        label={trans.__('Kind')}
        field="kind"
        formKey="kind"
        options={[
          ['script', trans.__('Python script')],
          ['notebook', trans.__('Notebook')],
          ['command', trans.__('Command')]
        ]}
      />
      {form.kind === 'command' ? (
        <TextRow
          {...props}
          label={trans.__('Command')}
          field="argv"
          formKey="command"
          help={trans.__('The program is looked up in the environment\'s bin first, e.g. "jupyter lab --no-browser".')}
        />
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
              {props.suggestions.map(s => (
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
        <select
          className="jp-mod-styled"
          name="env"
          value={env ? env.name : form.env}
          onChange={onChange('env', 'env')}
        >
          {envs === null ? (
            <option value={form.env}>
              {form.env || (props.envError ? trans.__('(none listed)') : trans.__('Loading…'))}
            </option>
          ) : null}
          {envs && form.env && !env ? <option value={form.env}>{form.env}</option> : null}
          {(envs ?? []).map(e => (
            <option key={e.prefix} value={e.name}>
              {envOptionText(e)}
            </option>
          ))}
        </select>
        {props.envError ? <div className="jp-condasvc-field-error">{props.envError}</div> : null}
        {envs && !envs.length ? (
          <div className="jp-condasvc-field-error">
            {trans.__(
              'No environment was found. The server looks for its own Python, .venv and .pixi folders in its root, ~/.virtualenvs and conda installations.'
            )}
          </div>
        ) : null}
        {env ? (
          <div className="jp-condasvc-help">
            {env.prefix}
            {form.kind === 'notebook' && !env.has_ipykernel
              ? ` — ${trans.__('no ipykernel: it cannot run notebooks')}`
              : ''}
          </div>
        ) : null}
      </Row>
      <TextRow
        {...props}
        label={trans.__('Arguments')}
        field="args"
        formKey="args"
        help={trans.__('Quoted like in a shell: --port 8080 "a b"')}
      />
      <TextRow
        {...props}
        label={trans.__('Working directory')}
        field="cwd"
        formKey="cwd"
        placeholder={trans.__("the file's folder")}
      />
      <TextRow {...props} label={trans.__('Description')} field="description" formKey="description" />
      {form.kind === 'notebook' ? (
        <>
          <TextRow
            {...props}
            label={trans.__('Parameters (JSON)')}
            field="parameters"
            formKey="parameters"
            help={trans.__('Injected after the cell tagged "parameters".')}
            placeholder='{"alpha": 0.5}'
            rows={3}
          />
          <TextRow
            {...props}
            label={trans.__('Executed copy')}
            field="output"
            formKey="output"
            placeholder="<name>.out.ipynb"
          />
        </>
      ) : null}
    </fieldset>
  );
}

export function VariablesSection(props: ISectionProps & { env: IEnvironment | undefined }): JSX.Element {
  const { form, set, errors, trans, env } = props;
  const update = (i: number, change: (v: IVariable) => Partial<IVariable>, field?: string) =>
    set(
      'variables',
      form.variables.map((x, j) => (j === i ? { ...x, ...change(x) } : x)),
      field
    );
  return (
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
            onChange={ev => update(i, () => ({ key: ev.target.value }), 'environment')}
          />
          <input
            className="jp-mod-styled"
            aria-label={trans.__('Variable value')}
            type={v.shown || !v.secret ? 'text' : 'password'}
            autoComplete="off"
            value={v.value}
            placeholder={v.stored ? trans.__('unchanged (write-only)') : ''}
            onChange={ev => update(i, () => ({ value: ev.target.value }), 'environment')}
          />
          <label
            className="jp-condasvc-check jp-condasvc-secret"
            title={trans.__('Secret: its value is write-only, never shown again nor returned by the API')}
          >
            <input
              type="checkbox"
              name="secret"
              checked={!!v.secret}
              aria-label={trans.__('Secret')}
              onChange={ev =>
                update(i, () => ({ secret: ev.target.checked, shown: !ev.target.checked }), 'environment')
              }
            />
            {trans.__('secret')}
          </label>
          {v.secret && !v.stored ? (
            <button type="button" className="jp-mod-styled" onClick={() => update(i, x => ({ shown: !x.shown }))}>
              {v.shown ? trans.__('Hide') : trans.__('Show')}
            </button>
          ) : null}
          <button
            type="button"
            className="jp-mod-styled"
            aria-label={trans.__('Remove variable')}
            onClick={() =>
              set(
                'variables',
                form.variables.filter((_, j) => j !== i),
                'environment'
              )
            }
          >
            ×
          </button>
        </div>
      ))}
      <button
        type="button"
        className="jp-mod-styled"
        onClick={() => set('variables', [...form.variables, { key: '', value: '', shown: true, secret: false }])}
      >
        {trans.__('Add variable')}
      </button>
      <FieldError field="environment" errors={errors} />
      {env && ['venv', 'virtualenv', 'uv'].includes(env.kind ?? 'conda') && !form.activation ? null : (
        <CheckBox
          {...props}
          label={trans.__('Also set what "conda activate" sets (the environment\'s activate.d scripts)')}
          field="activation"
          formKey="activation"
        />
      )}
      <FieldError field="activation" errors={errors} />
    </fieldset>
  );
}

export function WhenSection(
  props: ISectionProps & {
    preview: IPreview | null;
    /** The placeholder of an empty field: the default the server renders for this unit key. */
    defaultOf: (key: string) => string;
  }
): JSX.Element {
  const { form, set, errors, trans, preview, defaultOf } = props;
  const onChange = changer(set);
  const cron = cronToCalendar(form.schedule);
  // the crash-loop rows: label, spec field, form key, the unit key whose default is the placeholder, input mode
  const restartLimits: [string, string, keyof IFormState, string, 'decimal' | 'numeric'][] = [
    [trans.__('Wait before restart (s)'), 'restart_sec', 'restartSec', 'RestartSec', 'decimal'],
    [trans.__('At most … starts'), 'start_limit_burst', 'burst', 'StartLimitBurst', 'numeric'],
    [trans.__('… within (s)'), 'start_limit_interval_sec', 'interval', 'StartLimitIntervalSec', 'decimal']
  ];
  return (
    <fieldset>
      <legend>{trans.__('When it runs')}</legend>
      <CheckBox
        {...props}
        label={trans.__('Start at login (and at boot when lingering is on)')}
        field="enabled"
        formKey="enabled"
      />
      {form.kind === 'command' ? null : (
        <CheckBox
          {...props}
          label={trans.__('Restart when the file changes (each save restarts it while it runs)')}
          title={trans.__('A .path unit watches the file; each save restarts the service if it is running')}
          field="restart_on_change"
          formKey="restartOnChange"
        />
      )}
      <FieldError field="restart_on_change" errors={errors} />
      <Row
        label={trans.__('Schedule')}
        field="schedule"
        errors={errors}
        help={trans.__('A systemd calendar expression, e.g. daily, hourly, Mon..Fri 09:00. Empty: runs until stopped.')}
      >
        <div className="jp-condasvc-inline">
          <input
            className="jp-mod-styled"
            name="schedule"
            value={form.schedule}
            onChange={onChange('schedule', 'schedule')}
            placeholder={trans.__('empty: runs until stopped')}
          />
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
          {preview.next_runs
            .slice(0, 5)
            .map(t => new Date(t).toLocaleString())
            .join(' · ')}
        </div>
      ) : null}
      <SelectRow
        {...props}
        label={trans.__('Restart')}
        field="restart"
        formKey="restart"
        options={[
          ['', trans.__('default')],
          ['on-failure', trans.__('on failure')],
          ['always', trans.__('always')],
          ['no', trans.__('never')]
        ]}
      />
      <div className="jp-condasvc-grid">
        {restartLimits.map(([label, field, formKey, unitKey, mode]) => (
          <TextRow
            key={field}
            {...props}
            label={label}
            field={field}
            formKey={formKey}
            placeholder={defaultOf(unitKey)}
            inputMode={mode}
          />
        ))}
      </div>
    </fieldset>
  );
}

export function LimitsSection(props: ISectionProps & { warnings: string[] }): JSX.Element {
  const { trans } = props;
  return (
    <fieldset>
      <legend>{trans.__('Limits')}</legend>
      <div className="jp-condasvc-grid">
        <TextRow {...props} label={trans.__('Memory')} field="memory_max" formKey="memoryMax" help="512M, 2G, 50%" />
        <TextRow
          {...props}
          label={trans.__('CPU')}
          field="cpu_quota"
          formKey="cpuQuota"
          help={trans.__('50% is half a core')}
        />
      </div>
      {props.warnings.map(w => (
        <div key={w} className="jp-condasvc-banner jp-condasvc-banner-warn jp-condasvc-limit-warning">
          {w}
        </div>
      ))}
    </fieldset>
  );
}

/**
 * The health check. The server names every error of it `health_check` (formspec.errorRow places it on the
 * row its message names); each row edits, and clears the error of, its own field.
 */
export function HealthSection(props: ISectionProps): JSX.Element {
  const { form, trans } = props;
  // the probe's timing: form key, row field, label, placeholder (the server's default), input mode
  const timing: [keyof IFormState, string, string, string, 'decimal' | 'numeric'][] = [
    ['healthInterval', 'health_interval', trans.__('Every (s)'), '10', 'decimal'],
    ['healthTimeout', 'health_timeout', trans.__('Timeout (s)'), '3', 'decimal'],
    ['healthStart', 'health_start', trans.__('Grace (s)'), '30', 'decimal'],
    ['healthThreshold', 'health_threshold', trans.__('Failures'), '3', 'numeric']
  ];
  return (
    <fieldset>
      <legend>{trans.__('Health check')}</legend>
      <SelectRow
        {...props}
        label={trans.__('Probe')}
        field="health_check"
        name="health_type"
        formKey="healthType"
        help={trans.__('A service that stays unhealthy is restarted.')}
        options={[
          ['', trans.__('none')],
          ['http', 'HTTP'],
          ['tcp', 'TCP']
        ]}
      />
      {form.healthType === 'http' ? (
        <TextRow
          {...props}
          label="URL"
          field="health_url"
          formKey="healthUrl"
          placeholder="http://127.0.0.1:8080/health"
        />
      ) : null}
      {form.healthType === 'tcp' ? (
        <div className="jp-condasvc-grid">
          <TextRow
            {...props}
            label={trans.__('Host')}
            field="health_host"
            formKey="healthHost"
            placeholder="127.0.0.1"
          />
          <TextRow {...props} label={trans.__('Port')} field="health_port" formKey="healthPort" inputMode="numeric" />
        </div>
      ) : null}
      {form.healthType ? (
        <div className="jp-condasvc-grid">
          {timing.map(([key, field, label, placeholder, mode]) => (
            <TextRow
              {...props}
              key={field}
              label={label}
              field={field}
              formKey={key}
              placeholder={placeholder}
              inputMode={mode}
            />
          ))}
        </div>
      ) : null}
    </fieldset>
  );
}

export function PreviewPane(props: {
  trans: TranslationBundle;
  preview: IPreview | null;
  previewError: { field: string | null; message: string } | null;
  localError: LocalFieldError | null;
}): JSX.Element {
  const { trans, preview, previewError, localError } = props;
  const stale = !!(localError || previewError);
  return (
    <div className="jp-condasvc-form-preview">
      <h3>{preview ? preview.unit_name : trans.__('Unit preview')}</h3>
      {previewError && !previewError.field ? (
        <div className="jp-condasvc-field-error">{previewError.message}</div>
      ) : null}
      {previewError?.field ? (
        <div className="jp-condasvc-help">{trans.__('Preview: %1', previewError.message)}</div>
      ) : null}
      {stale && preview ? (
        <div className="jp-condasvc-banner jp-condasvc-banner-warn jp-condasvc-preview-stale" role="status">
          {trans.__(
            'Out of date: this is the unit before your last change, which has an error%1.',
            localError ? ` (${localError.field})` : previewError?.field ? ` (${previewError.field})` : ''
          )}
        </div>
      ) : null}
      <pre
        className={`jp-condasvc-unit${stale && preview ? ' jp-mod-stale' : ''}`}
        aria-label={trans.__('Unit preview')}
      >
        {preview ? preview.unit : trans.__('Fill in a name and an environment to see the unit.')}
      </pre>
      {preview?.timer ? (
        <>
          <h3>{preview.unit_name.replace(/\.service$/, '.timer')}</h3>
          <pre className="jp-condasvc-unit" aria-label={trans.__('Timer preview')}>
            {preview.timer}
          </pre>
        </>
      ) : null}
      {preview?.path_unit ? (
        <>
          <h3>{preview.unit_name.replace(/\.service$/, '.path')}</h3>
          <pre className="jp-condasvc-unit" aria-label={trans.__('Path unit preview')}>
            {preview.path_unit}
          </pre>
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
  );
}
