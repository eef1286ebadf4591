/** The service view: live status summary, actions, unit file and the log viewer. */
import type { TranslationBundle } from '@jupyterlab/translation';
import type { CommandRegistry } from '@lumino/commands';
import React, { useEffect, useRef, useState } from 'react';

import type { CondaSvcAPI } from '../api';
import { formatBytes, formatCpu, formatDuration, formatTime, joinArgs, relativeTime, secondsSince } from '../format';
import type { LogFollower } from '../logs';
import { displayState } from '../model';
import {
  healthText,
  lastEndedRun,
  lastExitText,
  progressText,
  rememberEnd,
  resourceText,
  sinceIso
} from '../statusfacts';
import type { IEndFacts } from '../statusfacts';
import { staleReason } from '../hosts';
import { CommandIDs, IRun, IServicesModel, LOCAL_HOST } from '../tokens';
import { kindLabel, StateBadge, useNow, useSignal } from './common';
import { LogViewer } from './LogViewer';
import { RestartNeeded } from './RestartNeeded';
import { RunsList } from './RunsList';

export interface IServiceDetailsProps {
  name: string;
  /** Its host (default local); `api` is that host's client. */
  host?: string;
  model: IServicesModel;
  api: CondaSvcAPI;
  commands: CommandRegistry;
  trans: TranslationBundle;
  follower: LogFollower;
  wrapLogs: boolean;
  download: (format: 'text' | 'json') => void;
}

function Fact(props: { label: string; children: React.ReactNode; name?: string }): JSX.Element {
  return (
    <div className="jp-condasvc-fact" data-fact={props.name}>
      <dt>{props.label}</dt>
      <dd>{props.children}</dd>
    </div>
  );
}

export function ServiceDetails(props: IServiceDetailsProps): JSX.Element {
  const { model, name, commands, trans, api } = props;
  useSignal(model.changed);
  const now = useNow(1000);
  const host = props.host || LOCAL_HOST;
  const service = model.get(name, host);
  const [unit, setUnit] = useState<string | null>(null);
  const [showUnit, setShowUnit] = useState(false);
  const updated = service?.updated ?? null;
  const [lastRun, setLastRun] = useState<IRun | null>(null);
  // what this tab saw of the last end: systemd zeroes a stopped unit's properties when it unloads it
  const ended = useRef<{ name: string; facts: IEndFacts | null }>({ name, facts: null });
  if (ended.current.name !== name) {
    ended.current = { name, facts: null };
  }
  if (service) {
    ended.current.facts = rememberEnd(ended.current.facts, service.status, trans.__.bind(trans));
  }

  useEffect(() => {
    if (!showUnit) {
      return;
    }
    let cancelled = false;
    api
      .unit(name)
      .then(u => !cancelled && setUnit(u.unit))
      .catch(e => !cancelled && setUnit(`# ${(e as Error).message}`));
    return () => {
      cancelled = true;
    };
  }, [showUnit, name, updated, api]);

  if (!service) {
    return (
      <div className="jp-condasvc-details">
        <div className="jp-condasvc-empty">
          {model.connection === 'open' ? trans.__('The service %1 no longer exists.', name) : trans.__('Connecting…')}
        </div>
        {model.connection === 'open' ? null : (
          <LogViewer follower={props.follower} trans={trans} defaultWrap={props.wrapLogs} download={props.download} />
        )}
      </div>
    );
  }

  const status = service.status;
  const state = displayState(service);
  const running = state === 'running' || state === 'starting';
  const __ = trans.__.bind(trans);
  const remembered = ended.current.facts;
  const since = sinceIso(status, remembered, lastRun);
  const sinceSeconds = secondsSince(since, now);
  const exec = (id: string) => () => void commands.execute(id, { name, host });
  const stale = staleReason(service, model.hostState(host));
  const lastExit = lastExitText(status, remembered, lastRun, __);
  const health = healthText(service, __);
  const progress = progressText(service, remembered, __);
  const memory = resourceText('memory', status.memory_current, status, model.host, formatBytes, __);
  const cpu = resourceText('cpu', status.cpu_usage_nsec, status, model.host, formatCpu, __);

  return (
    <div className="jp-condasvc-details" data-name={name} data-host={host} data-state={state}>
      <div className="jp-condasvc-details-head">
        <h2>{name}</h2>
        {host !== LOCAL_HOST ? (
          <span className="jp-condasvc-host-badge" title={trans.__('Host: %1', host)}>
            {host}
          </span>
        ) : null}
        <StateBadge service={service} trans={trans} />
        <span className="jp-condasvc-muted">
          {kindLabel(service.spec.kind, trans)} · {service.resolved.env_name || service.spec.env} · {service.unit}
        </span>
      </div>
      {service.spec.description ? <div className="jp-condasvc-muted">{service.spec.description}</div> : null}
      {stale ? (
        <div className="jp-condasvc-banner jp-condasvc-banner-warn jp-condasvc-stale-banner" role="status">
          {trans.__('Last known state: %1 cannot be reached now (%2).', host, stale)}
        </div>
      ) : null}
      <div className="jp-condasvc-actions" role="toolbar" aria-label={trans.__('Service actions')}>
        {running ? (
          <button className="jp-mod-styled" onClick={exec(CommandIDs.stopService)}>
            {trans.__('Stop')}
          </button>
        ) : (
          <button className="jp-mod-styled jp-mod-accept" onClick={exec(CommandIDs.startService)}>
            {trans.__('Start')}
          </button>
        )}
        <button className="jp-mod-styled" onClick={exec(CommandIDs.restartService)}>
          {trans.__('Restart')}
        </button>
        {service.spec.schedule ? (
          <button className="jp-mod-styled" onClick={exec(CommandIDs.runNowService)}>
            {trans.__('Run now')}
          </button>
        ) : null}
        {service.spec.schedule ? (
          status.schedule?.armed ? (
            <button className="jp-mod-styled" onClick={exec(CommandIDs.pauseService)}>
              {trans.__('Pause schedule')}
            </button>
          ) : (
            <button className="jp-mod-styled" onClick={exec(CommandIDs.resumeService)}>
              {trans.__('Resume schedule')}
            </button>
          )
        ) : null}
        {state === 'failed' && !status.start_limit_hit ? (
          <button className="jp-mod-styled" onClick={exec(CommandIDs.resetFailedService)}>
            {trans.__('Reset failed')}
          </button>
        ) : null}
        {service.spec.enabled ? (
          <button className="jp-mod-styled" onClick={exec(CommandIDs.disableService)}>
            {trans.__("Don't start at login")}
          </button>
        ) : (
          <button className="jp-mod-styled" onClick={exec(CommandIDs.enableService)}>
            {trans.__('Start at login')}
          </button>
        )}
        <button className="jp-mod-styled" onClick={exec(CommandIDs.editService)}>
          {trans.__('Edit')}
        </button>
        <button
          className="jp-mod-styled"
          onClick={exec(CommandIDs.exportSpec)}
          title={trans.__('Download %1.yaml', name)}
        >
          {trans.__('Export spec…')}
        </button>
        {service.spec.kind === 'notebook' ? (
          <button className="jp-mod-styled" onClick={exec(CommandIDs.openOutput)}>
            {trans.__('Open executed notebook')}
          </button>
        ) : null}
        <button className="jp-mod-styled jp-mod-warn" onClick={exec(CommandIDs.deleteService)}>
          {trans.__('Delete')}
        </button>
      </div>
      {status.start_limit_hit ? (
        <div className="jp-condasvc-banner jp-condasvc-banner-error" data-banner="start-limit">
          {trans.__(
            'It kept crashing (%1 restarts) and systemd stopped it at its start limit. Fix the cause (see the log and the Runs below), then reset and start.',
            status.n_restarts ?? 0
          )}{' '}
          <button className="jp-mod-styled jp-mod-accept" onClick={exec(CommandIDs.resetAndStartService)}>
            {trans.__('Reset and start')}
          </button>
        </div>
      ) : status.crash_looping ? (
        <div className="jp-condasvc-banner jp-condasvc-banner-warn" data-banner="crash-looping">
          {trans.__(
            'Crash-looping: it keeps exiting and being restarted (%1 restarts so far).',
            status.n_restarts ?? 0
          )}
        </div>
      ) : null}
      {(service.warnings ?? []).map(w => (
        <div key={w} className="jp-condasvc-banner jp-condasvc-banner-warn">
          {w}
        </div>
      ))}
      <RestartNeeded service={service} commands={commands} trans={trans} />
      <dl className="jp-condasvc-facts">
        <Fact name="state" label={trans.__('State')}>
          {status.active_state} ({status.sub_state})
        </Fact>
        <Fact name="since" label={trans.__('Since')}>
          {since ? `${formatTime(since)}${sinceSeconds !== null ? ` (${formatDuration(sinceSeconds)})` : ''}` : '—'}
        </Fact>
        <Fact name="pid" label="PID">
          {status.main_pid ?? '—'}
        </Fact>
        <Fact name="memory" label={trans.__('Memory')}>
          <span title={memory.reason}>
            {memory.text}
            {service.spec.memory_max
              ? status.memory_current !== null && status.memory_current !== undefined
                ? ` / ${service.spec.memory_max}`
                : ` · ${trans.__('limit %1', service.spec.memory_max)}`
              : ''}
          </span>
          {memory.reason ? <div className="jp-condasvc-muted jp-condasvc-fact-note">{memory.reason}</div> : null}
        </Fact>
        <Fact name="cpu" label={trans.__('CPU time')}>
          <span title={cpu.reason}>{cpu.text}</span>
          {cpu.reason ? <div className="jp-condasvc-muted jp-condasvc-fact-note">{cpu.reason}</div> : null}
        </Fact>
        <Fact name="restarts" label={trans.__('Restarts')}>
          {status.n_restarts ?? 0}
        </Fact>
        <Fact name="last-exit" label={trans.__('Last exit')}>
          {lastExit}
        </Fact>
        <Fact name="result" label={trans.__('Result')}>
          {status.result ?? '—'}
        </Fact>
        {health !== null ? (
          <Fact name="health" label={trans.__('Health')}>
            {health}
          </Fact>
        ) : null}
        {progress ? (
          <Fact name="progress" label={trans.__('Progress')}>
            {progress}
          </Fact>
        ) : null}
        {service.spec.schedule ? (
          <>
            <Fact name="schedule" label={trans.__('Schedule')}>
              {service.spec.schedule} · {status.schedule?.armed ? trans.__('armed') : trans.__('paused')}
            </Fact>
            <Fact name="next-run" label={trans.__('Next run')}>
              {status.schedule?.next_run
                ? `${formatTime(status.schedule.next_run)} (${relativeTime(status.schedule.next_run, now)})`
                : '—'}
            </Fact>
            <Fact name="last-run" label={trans.__('Last run')}>
              {status.schedule?.last_run
                ? `${formatTime(status.schedule.last_run)} (${relativeTime(status.schedule.last_run, now)})`
                : '—'}
            </Fact>
          </>
        ) : null}
        <Fact name="command" label={trans.__('Command')}>
          <code title={trans.__('Quoted for a POSIX shell: it can be pasted as is')}>
            {joinArgs(service.resolved.exec_argv ?? [])}
          </code>
        </Fact>
      </dl>
      <details
        className="jp-condasvc-unit-details"
        onToggle={ev => setShowUnit((ev.target as HTMLDetailsElement).open)}
      >
        <summary>{trans.__('Unit file')}</summary>
        <pre className="jp-condasvc-unit">{unit ?? trans.__('Loading…')}</pre>
      </details>
      <RunsList name={name} api={api} trans={trans} service={service} onRuns={runs => setLastRun(lastEndedRun(runs))} />
      <LogViewer follower={props.follower} trans={trans} defaultWrap={props.wrapLogs} download={props.download} />
    </div>
  );
}
