/** The sidebar: every service, live, with quick actions; empty state; host banners. */
import type { TranslationBundle } from '@jupyterlab/translation';
import {
  addIcon,
  refreshIcon,
  runIcon,
  stopIcon,
  ToolbarButtonComponent
} from '@jupyterlab/ui-components';
import type { CommandRegistry } from '@lumino/commands';
import React from 'react';

import { formatBytes, formatDuration, relativeTime, secondsSince } from '../format';
import { displayState } from '../model';
import { CommandIDs, IService, IServicesModel } from '../tokens';
import { kindLabel, StateBadge, useNow, useSignal } from './common';
import { logsIcon } from '../icons';

export interface IServiceListProps {
  model: IServicesModel;
  commands: CommandRegistry;
  trans: TranslationBundle;
}

function HostBanners(props: { model: IServicesModel; trans: TranslationBundle }): JSX.Element | null {
  const { model, trans } = props;
  const banners: JSX.Element[] = [];
  const host = model.host;
  if (model.managerReachable === false || (host && !host.manager.reachable)) {
    banners.push(
      <div key="manager" className="jp-condasvc-banner jp-condasvc-banner-error" role="alert">
        <strong>{trans.__('The systemd user manager cannot be reached.')}</strong>
        <div>{model.managerMessage || host?.manager.error || ''}</div>
        <div className="jp-condasvc-fix">
          {trans.__(
            'Services need your systemd user manager (systemctl --user). The message above names the bus address this server tried, why it failed and what to do. The list reconnects by itself.'
          )}
        </div>
      </div>
    );
  }
  if (host && !host.journal.readable && host.manager.reachable) {
    banners.push(
      <div key="journal" className="jp-condasvc-banner jp-condasvc-banner-warn" role="status">
        <strong>{trans.__('Service logs are not readable.')}</strong>
        <div>{host.journal.message}</div>
        {host.journal.fix ? <div className="jp-condasvc-fix">{host.journal.fix}</div> : null}
      </div>
    );
  }
  if (model.connection === 'closed' && model.managerReachable !== false) {
    banners.push(
      <div key="socket" className="jp-condasvc-banner jp-condasvc-banner-warn" role="status">
        {trans.__('Lost the connection to the server; reconnecting…')}
      </div>
    );
  }
  return banners.length ? <div className="jp-condasvc-banners">{banners}</div> : null;
}

function ServiceRow(props: IServiceListProps & { service: IService; now: number }): JSX.Element {
  const { service, commands, trans, now } = props;
  const state = displayState(service);
  const status = service.status;
  const env = service.resolved.env_name || service.spec.env;
  const details: string[] = [kindLabel(service.spec.kind, trans), env];
  if (state === 'running' || state === 'starting') {
    const up = secondsSince(status.active_enter_timestamp, now);
    if (up !== null && state === 'running') {
      details.push(trans.__('up %1', formatDuration(up)));
    }
    if (status.memory_current !== null && status.memory_current !== undefined) {
      details.push(formatBytes(status.memory_current));
    }
  }
  if (status.n_restarts) {
    details.push(trans._n('%1 restart', '%1 restarts', status.n_restarts));
  }
  const next = status.schedule?.next_run;
  const health = status.health;
  const exec = (id: string) => () => void commands.execute(id, { name: service.name });
  const running = state === 'running' || state === 'starting';
  return (
    <li
      className={`jp-condasvc-item jp-condasvc-item-${state}`}
      data-name={service.name}
      data-state={state}
      tabIndex={0}
      onDoubleClick={exec(CommandIDs.openService)}
      onKeyDown={ev => {
        if (ev.key === 'Enter' && ev.target === ev.currentTarget) {
          void commands.execute(CommandIDs.openService, { name: service.name });
        }
      }}
    >
      <div className="jp-condasvc-item-head">
        <button
          className="jp-condasvc-link jp-condasvc-item-name"
          title={trans.__('Open %1', service.name)}
          onClick={exec(CommandIDs.openService)}
        >
          {service.name}
        </button>
        <StateBadge service={service} trans={trans} />
      </div>
      <div className="jp-condasvc-item-details">
        {details.join(' · ')}
        {health ? (
          <span className={`jp-condasvc-health jp-condasvc-health-${health.state}`}>
            {' · '}
            {health.state === 'healthy'
              ? trans.__('healthy')
              : health.state === 'unhealthy'
                ? trans.__('unhealthy')
                : trans.__('health: starting')}
          </span>
        ) : null}
      </div>
      {next ? (
        <div className="jp-condasvc-item-details">
          {trans.__('next run %1', relativeTime(next, now))}
        </div>
      ) : null}
      {state === 'failed' && status.result ? (
        <div className="jp-condasvc-item-details jp-condasvc-error-text">
          {status.exit_reason ?? trans.__('result: %1', status.result)}
        </div>
      ) : null}
      <div className="jp-condasvc-item-actions">
        {running ? (
          <ToolbarButtonComponent
            icon={stopIcon}
            tooltip={trans.__('Stop %1', service.name)}
            label={trans.__('Stop')}
            onClick={exec(CommandIDs.stopService)}
          />
        ) : (
          <ToolbarButtonComponent
            icon={runIcon}
            tooltip={trans.__('Start %1', service.name)}
            label={trans.__('Start')}
            onClick={exec(CommandIDs.startService)}
          />
        )}
        <ToolbarButtonComponent
          icon={refreshIcon}
          tooltip={trans.__('Restart %1', service.name)}
          label={trans.__('Restart')}
          onClick={exec(CommandIDs.restartService)}
        />
        <ToolbarButtonComponent
          icon={logsIcon}
          tooltip={trans.__('Logs of %1', service.name)}
          label={trans.__('Logs')}
          onClick={exec(CommandIDs.showLogs)}
        />
      </div>
    </li>
  );
}

export function ServiceList(props: IServiceListProps): JSX.Element {
  const { model, commands, trans } = props;
  useSignal(model.changed);
  const now = useNow(1000);
  const services = model.services;
  const counts = model.counts();
  return (
    <div className="jp-condasvc-panel">
      <div className="jp-condasvc-panel-header">
        <h2 className="jp-condasvc-title">{trans.__('Services')}</h2>
        <ToolbarButtonComponent
          icon={addIcon}
          tooltip={trans.__('New service')}
          onClick={() => void commands.execute(CommandIDs.newService)}
        />
      </div>
      <HostBanners model={model} trans={trans} />
      {services.length ? (
        <>
          <div className="jp-condasvc-summary">
            {trans.__('%1 running', counts.running + counts.starting)}
            {counts.failed ? ` · ${trans.__('%1 failed', counts.failed)}` : ''}
            {counts.scheduled ? ` · ${trans.__('%1 scheduled', counts.scheduled)}` : ''}
            {` · ${trans.__('%1 stopped', counts.stopped)}`}
          </div>
          <ul className="jp-condasvc-list" aria-label={trans.__('Services')}>
            {services.map(service => (
              <ServiceRow key={service.name} {...props} service={service} now={now} />
            ))}
          </ul>
        </>
      ) : model.connection === 'open' || model.managerReachable !== null ? (
        <div className="jp-condasvc-empty">
          <p>
            {trans.__(
              'A service keeps a notebook, a Python script or a command running in the conda environment you choose, as a systemd user service: it starts on its own (at login, on a schedule, or when you click), restarts when it crashes, and keeps running after you close JupyterLab.'
            )}
          </p>
          <p>
            {trans.__(
              'Its output goes to the journal, and you can follow it here. Right-click a notebook or a .py file and choose "Run as Service", or start from scratch:'
            )}
          </p>
          <button
            className="jp-mod-styled jp-mod-accept jp-condasvc-new"
            onClick={() => void commands.execute(CommandIDs.newService)}
          >
            {trans.__('New service')}
          </button>
        </div>
      ) : (
        <div className="jp-condasvc-empty">{trans.__('Connecting…')}</div>
      )}
    </div>
  );
}
