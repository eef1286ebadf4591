/**
 * The create / edit form of a service, with a live preview of the unit
 * (debounced POST preview) and the server's field errors shown next to
 * the field they name. The spec <-> form mapping is formspec.ts; the
 * sections are FormSections.tsx.
 */
import { Notification } from '@jupyterlab/apputils';
import type { TranslationBundle } from '@jupyterlab/translation';
import React, { useCallback, useEffect, useMemo, useRef, useState } from 'react';

import type { CondaSvcAPI, CondaSvcError } from '../api';
import { defaultEnvironment, envFits, envProblem } from '../envchoice';
import { unitValue } from '../formhelp';
import { editPatch, errorRow, formFromSpec, IFormState, LocalFieldError, SPEC_FIELDS, specFromForm } from '../formspec';
import { LOCAL_HOST } from '../tokens';
import type { IEnvironment, IService, IServiceSpec, Kind } from '../tokens';
import {
  HealthSection,
  LimitsSection,
  PreviewPane,
  Row,
  SetField,
  VariablesSection,
  WhatSection,
  WhenSection
} from './FormSections';
import { usePathSuggestions, usePreview } from './formhooks';

export interface IServiceFormProps {
  api: CondaSvcAPI;
  trans: TranslationBundle;
  initial: Partial<IServiceSpec>;
  /** The service being edited; absent when creating. */
  editing?: string;
  /** The host it runs on (default local); an edit cannot change it. */
  host?: string;
  /** The hosts a new service may go to (`local` first); the Host field shows when there is more than one. */
  hosts?: string[];
  /** Files under a directory of the server's contents, for path completion. */
  listFiles: (dir: string) => Promise<string[]>;
  /** Pick a file with JupyterLab's file dialog. */
  browse: (kind: Kind) => Promise<string | null>;
  onDone: (service: IService) => void;
  onCancel: () => void;
  /** Told whether the user changed anything (closing then asks first). */
  onDirty?: (dirty: boolean) => void;
}

const noFiles = async (): Promise<string[]> => [];

/** A health row (health_url, health_port, ...) whose error waits until the user used that row. */
const isHealthRow = (field: string) => field.startsWith('health_') && field !== 'health_check';

export function ServiceForm(props: IServiceFormProps): JSX.Element {
  const { trans } = props;
  // Every request of the form (environments, preview, create, update) goes to the chosen host.
  const [host, setHost] = useState(props.host || LOCAL_HOST);
  const api = useMemo(() => props.api.at(host), [props.api, host]);
  const hosts = props.hosts ?? [LOCAL_HOST];
  const remote = host !== LOCAL_HOST;
  const [form, setForm] = useState<IFormState>(() => {
    const f = formFromSpec(props.initial);
    // Only an edit has stored secret values to keep; a copy asks for them again.
    return props.editing ? f : { ...f, variables: f.variables.map(v => ({ ...v, stored: false })) };
  });
  const [envs, setEnvs] = useState<IEnvironment[] | null>(null);
  const [envError, setEnvError] = useState('');
  const [submitErrors, setSubmitErrors] = useState<Record<string, string>>({});
  const [generalError, setGeneralError] = useState('');
  const [touched, setTouched] = useState<Set<string>>(() => new Set(Object.keys(props.initial)));
  const [busy, setBusy] = useState(false);
  const initialTouched = useRef(touched.size);
  const dirty = touched.size > initialTouched.current;
  useEffect(() => props.onDirty?.(dirty), [dirty]);

  const set: SetField = useCallback((key, value, field) => {
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

  // The environments of the chosen host, again when the host changes.
  useEffect(() => {
    let cancelled = false;
    setEnvs(null);
    setEnvError('');
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

  // Path completion and Browse read this server's files: no help for a path on another host.
  const suggestions = usePathSuggestions(remote ? noFiles : props.listFiles, form.path, form.kind);
  const browse = remote
    ? async () => {
        Notification.info(trans.__('Browse shows the files of this server; type the path on %1.', host), {
          autoClose: 5000
        });
        return null;
      }
    : props.browse;

  // The spec as typed so far, or the first field the browser can tell is wrong.
  const localSpec = useMemo((): { spec: IServiceSpec | null; error: LocalFieldError | null } => {
    try {
      return { spec: specFromForm(form), error: null };
    } catch (e) {
      return { spec: null, error: e as LocalFieldError };
    }
  }, [form]);
  const { preview, error: previewError } = usePreview(api, localSpec.spec);

  const errors: Record<string, string> = { ...submitErrors };
  const localError = localSpec.error;
  if (localError && !errors[localError.field] && (!isHealthRow(localError.field) || touched.has(localError.field))) {
    errors[localError.field] = localError.message;
  }
  // The environment is preselected, so its problems show even before the user touches it; a health
  // check's, once a probe is chosen.
  const previewRow = previewError ? errorRow(previewError.field, previewError.message) : null;
  if (
    previewError &&
    previewRow &&
    !errors[previewRow] &&
    (touched.has(previewRow) || previewRow === 'env' || (isHealthRow(previewRow) && touched.has('health_check')))
  ) {
    errors[previewRow] = previewError.message;
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
      const service = props.editing ? await api.update(props.editing, editPatch(spec)) : await api.create(spec);
      setSubmitErrors({});
      // The answer names its host (contract-15); an older server's does not, and its services are local.
      props.onDone(service.host || !remote ? service : { ...service, host });
    } catch (e) {
      const err = e as CondaSvcError;
      const row = err.field === 'host' ? 'host' : errorRow(err.field, err.message);
      if (row === 'host') {
        setSubmitErrors({ host: err.message });
      } else if (row && (SPEC_FIELDS.has(row) || isHealthRow(row))) {
        setSubmitErrors({ [row]: err.message });
        setTouched(t => new Set([...t, row]));
        window.requestAnimationFrame(() => {
          document.getElementById(`condasvc-error-${row}`)?.scrollIntoView({ block: 'center' });
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
  const envLocalProblem = env ? envProblem(env, form.kind) : '';
  if (envLocalProblem && !errors.env) {
    errors.env = envLocalProblem;
  }
  const section = { form, set, errors, trans };

  return (
    <form className="jp-condasvc-form" onSubmit={submit} aria-label={trans.__('Service')}>
      <div className="jp-condasvc-form-fields">
        <h2>
          {props.editing
            ? remote
              ? trans.__('Edit service %1 on %2', props.editing, host)
              : trans.__('Edit service %1', props.editing)
            : trans.__('New service')}
        </h2>
        {generalError ? (
          <div className="jp-condasvc-banner jp-condasvc-banner-error" role="alert">
            {generalError}
          </div>
        ) : null}
        {hosts.length > 1 || remote ? (
          <fieldset className="jp-condasvc-host-fields">
            <legend>{trans.__('Where it runs')}</legend>
            <Row
              label={trans.__('Host')}
              field="host"
              errors={errors}
              help={
                props.editing
                  ? trans.__('A service stays on its host; to move it, duplicate it onto another host.')
                  : trans.__(
                      "The machine whose systemd user manager runs it: this server's (local) or a host it reaches over SSH. Environments and paths are that host's."
                    )
              }
            >
              <select
                className="jp-mod-styled"
                name="host"
                value={host}
                disabled={!!props.editing}
                onChange={ev => {
                  setHost(ev.target.value);
                  // An environment the user did not choose is the new host's default, once it is listed.
                  if (!touched.has('env')) {
                    setForm(f => ({ ...f, env: '' }));
                  }
                  setTouched(t => (t.has('host') ? t : new Set([...t, 'host'])));
                }}
              >
                {(hosts.includes(host) ? hosts : [...hosts, host]).map(h => (
                  <option key={h} value={h}>
                    {h === LOCAL_HOST ? trans.__('local (this server)') : h}
                  </option>
                ))}
              </select>
            </Row>
          </fieldset>
        ) : null}
        <WhatSection
          {...section}
          editing={props.editing}
          envs={envs}
          env={env}
          envError={envError}
          suggestions={suggestions}
          browse={browse}
        />
        <VariablesSection {...section} env={env} />
        <WhenSection {...section} preview={preview} defaultOf={defaultOf} />
        <LimitsSection {...section} warnings={preview?.warnings ?? []} />
        <HealthSection {...section} />
        <div className="jp-condasvc-form-buttons">
          <button type="button" className="jp-mod-styled jp-mod-reject" onClick={props.onCancel}>
            {trans.__('Cancel')}
          </button>
          <button type="submit" className="jp-mod-styled jp-mod-accept jp-condasvc-submit" disabled={busy}>
            {props.editing ? trans.__('Save') : trans.__('Create')}
          </button>
        </div>
      </div>
      <PreviewPane trans={trans} preview={preview} previewError={previewError} localError={localError} />
    </form>
  );
}
