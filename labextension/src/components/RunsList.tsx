/** The Runs list of a service tab: every start, newest first, with its own log and (notebooks) its executed copy. */
import type { TranslationBundle } from '@jupyterlab/translation';
import React, { useEffect, useState } from 'react';

import type { CondaSvcAPI } from '../api';
import { downloadBlob } from '../download';
import { formatDuration, formatTime } from '../format';
import type { IRun, IService } from '../tokens';

export interface IRunsListProps {
  name: string;
  api: CondaSvcAPI;
  trans: TranslationBundle;
  /** The service as the model has it: the list is read again when its state changes. */
  service: IService;
  /** Told the list (newest first) each time it is read. */
  onRuns?: (runs: IRun[]) => void;
}

function exitText(run: IRun): string {
  if (run.signal) {
    return run.signal;
  }
  return run.exit_status === null || run.exit_status === undefined ? '—' : String(run.exit_status);
}

export function RunsList(props: IRunsListProps): JSX.Element {
  const { name, api, trans, service, onRuns } = props;
  const [runs, setRuns] = useState<IRun[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [open, setOpen] = useState<string | null>(null);
  const [log, setLog] = useState<string | null>(null);
  const status = service.status;
  // Each run begins and ends with a state change the model is told about: read the list again then.
  const key = `${status.active_state}|${status.sub_state}|${status.n_restarts}|${status.state_change_timestamp}|${status.status_text}`;

  useEffect(() => {
    let cancelled = false;
    api
      .runs(name, 50)
      .then(r => {
        if (!cancelled) {
          setRuns(r.runs);
          setError(null);
          onRuns?.(r.runs);
        }
      })
      .catch(e => !cancelled && setError((e as Error).message));
    return () => {
      cancelled = true;
    };
  }, [name, api, key]);

  useEffect(() => {
    if (open === null) {
      setLog(null);
      return;
    }
    let cancelled = false;
    api
      .runLog(name, open)
      .then(page => !cancelled && setLog(page.entries.map(e => `${e.realtime.slice(11, 23)} ${e.message}`).join('\n')))
      .catch(e => !cancelled && setLog(`# ${(e as Error).message}`));
    return () => {
      cancelled = true;
    };
  }, [open, name, api, key]);

  const notebook = async (run: IRun) => {
    try {
      const copy = await api.runNotebook(name, run.id);
      downloadBlob(
        `${name}-${run.start.slice(0, 19).replace(/[:T]/g, '')}.ipynb`,
        new Blob([JSON.stringify(copy, null, 1)], { type: 'application/x-ipynb+json' })
      );
    } catch (e) {
      setError((e as Error).message);
    }
  };

  return (
    <details className="jp-condasvc-runs" open>
      <summary>
        {trans.__('Runs')}
        {runs ? ` (${runs.length})` : ''}
      </summary>
      {error ? <div className="jp-condasvc-banner jp-condasvc-banner-warn">{error}</div> : null}
      {runs === null ? (
        <div className="jp-condasvc-muted">{trans.__('Loading…')}</div>
      ) : runs.length === 0 ? (
        <div className="jp-condasvc-muted">{trans.__('No runs in the journal yet.')}</div>
      ) : (
        <table className="jp-condasvc-runs-table">
          <thead>
            <tr>
              <th>{trans.__('Started')}</th>
              <th>{trans.__('Trigger')}</th>
              <th>{trans.__('Duration')}</th>
              <th>{trans.__('Result')}</th>
              <th>{trans.__('Exit')}</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {runs.map(run => (
              <React.Fragment key={run.id}>
                <tr data-run={run.id} data-state={run.state}>
                  <td>{formatTime(run.start)}</td>
                  <td>{run.trigger}</td>
                  <td>{run.duration_sec === null ? '—' : formatDuration(run.duration_sec)}</td>
                  <td className={`jp-condasvc-run-${run.state}`}>
                    {run.state === 'running'
                      ? `${trans.__('running')}${run.progress ? ` · ${run.progress}` : ''}`
                      : run.state === 'failed'
                        ? trans.__('failed (%1)', run.result ?? '?')
                        : run.state === 'finished'
                          ? trans.__('success')
                          : trans.__('unknown')}
                  </td>
                  <td>{exitText(run)}</td>
                  <td>
                    <button
                      className="jp-mod-styled jp-mod-minimal"
                      onClick={() => setOpen(open === run.id ? null : run.id)}
                    >
                      {open === run.id ? trans.__('Hide log') : trans.__('Log')}
                    </button>
                    {run.has_notebook ? (
                      <button className="jp-mod-styled jp-mod-minimal" onClick={() => void notebook(run)}>
                        {trans.__('Notebook')}
                      </button>
                    ) : null}
                  </td>
                </tr>
                {open === run.id ? (
                  <tr>
                    <td colSpan={6}>
                      <pre className="jp-condasvc-run-log">{log ?? trans.__('Loading…')}</pre>
                    </td>
                  </tr>
                ) : null}
              </React.Fragment>
            ))}
          </tbody>
        </table>
      )}
    </details>
  );
}
