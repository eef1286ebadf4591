/** The sidebar: every service, live, with quick actions; empty state; host banners. */
import type { TranslationBundle } from '@jupyterlab/translation';
import {
  addIcon,
  fileUploadIcon,
  LabIcon,
  refreshIcon,
  runIcon,
  stopIcon,
  ToolbarButtonComponent
} from '@jupyterlab/ui-components';
import type { CommandRegistry } from '@lumino/commands';
import React, { useCallback, useEffect, useLayoutEffect, useMemo, useRef, useState } from 'react';

import { formatBytes, formatDuration, relativeTime } from '../format';
import {
  DEFAULT_QUERY,
  facets,
  IListQuery,
  isCrashLooping,
  lastExitText,
  lastExitTime,
  moveFocus,
  restartNeeded,
  SortKey,
  uptime,
  visibleServices,
  windowRange
} from '../listview';
import { hostErrorParts, hostOf, keyOf, staleReason } from '../hosts';
import { displayState } from '../model';
import { CommandIDs, IHostState, IService, IServicesModel, LOCAL_HOST } from '../tokens';
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
  for (const h of model.hosts) {
    if (h.name !== LOCAL_HOST && h.state !== 'up') {
      const count = model.services.filter(s => hostOf(s) === h.name).length;
      banners.push(<RemoteHostBanner key={`host-${h.name}`} host={h} count={count} trans={trans} />);
    }
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

/** Another host that is down (its reason and fix) or still connecting. */
function RemoteHostBanner(props: { host: IHostState; count: number; trans: TranslationBundle }): JSX.Element {
  const { host, trans } = props;
  const { message, fix } = hostErrorParts(host.error);
  const down = host.state === 'down';
  return (
    <div
      className={`jp-condasvc-banner jp-condasvc-host-banner ${down ? 'jp-condasvc-banner-error' : 'jp-condasvc-banner-info'}`}
      data-host={host.name}
      data-host-state={host.state}
      role={down ? 'alert' : 'status'}
    >
      <strong>
        {!down
          ? trans.__('Connecting to host %1…', host.name)
          : props.count
            ? trans._n(
                'Host %2 is down: its service shows its last known state.',
                'Host %2 is down: its %1 services show their last known state.',
                props.count,
                host.name
              )
            : trans.__('Host %1 is down.', host.name)}
      </strong>
      {message ? <div className="jp-condasvc-host-message">{message}</div> : null}
      {fix ? <div className="jp-condasvc-fix">{fix}</div> : null}
    </div>
  );
}

/** Every row has this height (px), so the list renders only the rows on screen. */
export const ROW_HEIGHT = 74;

interface IRowProps extends IServiceListProps {
  service: IService;
  now: number;
  index: number;
  selected: boolean;
  focused: boolean;
  /** Show the service's host (more than one host is configured). */
  showHost: boolean;
  /** Why its state may be out of date ('' when current). */
  stale: string;
  onSelect: (key: string, index: number, range: boolean) => void;
  onFocusRow: (index: number) => void;
}

const ServiceRow = React.memo(ServiceRowImpl);

function ServiceRowImpl(props: IRowProps): JSX.Element {
  const { service, commands, trans, now, index, selected, focused } = props;
  const state = displayState(service);
  const status = service.status;
  const env = service.resolved.env_name || service.spec.env;
  const details: string[] = [kindLabel(service.spec.kind, trans), env];
  const up = uptime(service, now);
  if (up !== null && state === 'running') {
    details.push(trans.__('up %1', formatDuration(up)));
  }
  if (
    (state === 'running' || state === 'starting') &&
    status.memory_current !== null &&
    status.memory_current !== undefined
  ) {
    details.push(formatBytes(status.memory_current));
  }
  if (status.n_restarts) {
    details.push(trans._n('%1 restart', '%1 restarts', status.n_restarts));
  }
  const exit = lastExitText(service);
  const exitAt = lastExitTime(service);
  if (exit && state !== 'running' && state !== 'starting' && exitAt !== null) {
    details.push(trans.__('last %1, %2', exit, relativeTime(new Date(exitAt).toISOString(), now)));
  } else if (state === 'failed' && status.result) {
    details.push(status.exit_reason ?? trans.__('result: %1', status.result));
  }
  const next = status.schedule?.next_run;
  if (next) {
    details.push(trans.__('next run %1', relativeTime(next, now)));
  }
  const health = status.health;
  const looping = isCrashLooping(service);
  const host = hostOf(service);
  const exec = (id: string) => () => void commands.execute(id, { name: service.name, host });
  const stale = props.stale;
  const running = state === 'running' || state === 'starting';
  // the item's buttons: icon, tooltip, label, command
  const actions: [LabIcon, string, string, string][] = [
    running
      ? [stopIcon, trans.__('Stop %1', service.name), trans.__('Stop'), CommandIDs.stopService]
      : [runIcon, trans.__('Start %1', service.name), trans.__('Start'), CommandIDs.startService],
    [refreshIcon, trans.__('Restart %1', service.name), trans.__('Restart'), CommandIDs.restartService],
    [logsIcon, trans.__('Logs of %1', service.name), trans.__('Logs'), CommandIDs.showLogs]
  ];
  return (
    <li
      className={`jp-condasvc-item jp-condasvc-item-${state}${selected ? ' jp-mod-selected' : ''}${focused ? ' jp-mod-focused' : ''}${looping ? ' jp-condasvc-item-looping' : ''}${stale ? ' jp-condasvc-item-stale' : ''}`}
      data-name={service.name}
      data-host={host}
      data-state={state}
      title={stale ? trans.__('Last known state; %1', stale) : undefined}
      data-index={index}
      role="option"
      aria-selected={selected}
      tabIndex={focused ? 0 : -1}
      onFocus={ev => ev.target === ev.currentTarget && props.onFocusRow(index)}
      onDoubleClick={exec(CommandIDs.openService)}
    >
      <div className="jp-condasvc-item-head">
        <input
          type="checkbox"
          className="jp-condasvc-item-select"
          checked={selected}
          tabIndex={-1}
          aria-label={trans.__('Select %1', service.name)}
          onClick={ev => {
            ev.stopPropagation();
            props.onSelect(keyOf(service), index, ev.shiftKey);
          }}
          onChange={() => undefined}
        />
        <button
          className="jp-condasvc-link jp-condasvc-item-name"
          title={trans.__('Open %1', service.name)}
          tabIndex={-1}
          onClick={exec(CommandIDs.openService)}
        >
          {service.name}
        </button>
        {props.showHost ? (
          <span
            className={`jp-condasvc-host-badge${host === LOCAL_HOST ? ' jp-condasvc-host-local' : ''}`}
            title={trans.__('Host: %1', host)}
          >
            {host}
          </span>
        ) : null}
        {restartNeeded(service) ? (
          <button
            className="jp-condasvc-restart-needed"
            tabIndex={-1}
            title={trans.__('Edited after it started: it still runs the old version. Click to restart it now.')}
            onClick={exec(CommandIDs.restartService)}
          >
            {trans.__('restart needed')}
          </button>
        ) : null}
        {looping ? (
          <span
            className="jp-condasvc-looping"
            title={trans.__('Restarted %1 times: it keeps crashing', status.n_restarts ?? 0)}
          >
            {trans.__('crash-looping')}
          </span>
        ) : null}
        <StateBadge service={service} trans={trans} />
      </div>
      <div className="jp-condasvc-item-details" title={stale ? undefined : details.join(' · ')}>
        {stale ? <span className="jp-condasvc-stale-badge">{trans.__('last known')}</span> : null}
        {details.join(' · ')}
        {health && running ? (
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
      <div className="jp-condasvc-item-actions">
        {actions.map(([icon, tooltip, label, id]) => {
          // a host out of reach cannot act: its actions wait for it (the log tab still shows what was read)
          const waits = !!stale && id !== CommandIDs.showLogs;
          return (
            <ToolbarButtonComponent
              key={id}
              icon={icon}
              tooltip={waits ? trans.__('%1 cannot be reached now: %2', host, stale) : tooltip}
              label={label}
              enabled={!waits}
              onClick={exec(id)}
            />
          );
        })}
      </div>
    </li>
  );
}

const SORTS: Array<[SortKey, string]> = [
  ['attention', 'failed first'],
  ['name', 'name'],
  ['uptime', 'uptime'],
  ['restarts', 'restarts'],
  ['memory', 'memory'],
  ['lastExit', 'last exit'],
  ['nextRun', 'next run']
];

/** Filter, sort and bulk actions above the list (part of the sticky header). */
function ListToolbar(props: {
  trans: TranslationBundle;
  query: IListQuery;
  setQuery: (q: IListQuery) => void;
  envs: string[];
  kinds: string[];
  /** The host names for the host filter; empty when only local (no filter shown). */
  hosts: string[];
  shown: number;
  total: number;
  selected: string[];
  allShownSelected: boolean;
  onSelectAll: (all: boolean) => void;
  onBulk: (id: string) => void;
  filterRef: React.RefObject<HTMLInputElement>;
  onFilterKey: (ev: React.KeyboardEvent) => void;
}): JSX.Element {
  const { trans, query, setQuery } = props;
  const set = <K extends keyof IListQuery>(key: K, value: IListQuery[K]) => setQuery({ ...query, [key]: value });
  const textFilter = (
    <input
      ref={props.filterRef}
      className="jp-mod-styled jp-condasvc-filter"
      type="search"
      placeholder={trans.__('Filter: name, path, env… ( / )')}
      aria-label={trans.__('Filter services')}
      value={query.text}
      onChange={ev => set('text', ev.target.value)}
      onKeyDown={props.onFilterKey}
    />
  );
  return (
    <div className="jp-condasvc-listbar">
      {props.hosts.length ? (
        // More than one host: the host filter beside the text filter.
        <div className="jp-condasvc-listbar-row jp-condasvc-filter-row">
          {textFilter}
          <select
            className="jp-mod-styled jp-condasvc-host-filter"
            aria-label={trans.__('Host')}
            value={query.host}
            onChange={ev => set('host', ev.target.value)}
          >
            <option value="all">{trans.__('any host')}</option>
            {props.hosts.map(h => (
              <option key={h} value={h}>
                {h}
              </option>
            ))}
          </select>
        </div>
      ) : (
        textFilter
      )}
      <div className="jp-condasvc-listbar-row">
        <select
          className="jp-mod-styled"
          aria-label={trans.__('State')}
          value={query.state}
          onChange={ev => set('state', ev.target.value as IListQuery['state'])}
        >
          <option value="all">{trans.__('any state')}</option>
          <option value="attention">{trans.__('needs attention')}</option>
          <option value="running">{trans.__('running')}</option>
          <option value="failed">{trans.__('failed')}</option>
          <option value="scheduled">{trans.__('scheduled')}</option>
          <option value="stopped">{trans.__('stopped')}</option>
          <option value="starting">{trans.__('starting')}</option>
        </select>
        <select
          className="jp-mod-styled"
          aria-label={trans.__('Kind')}
          value={query.kind}
          onChange={ev => set('kind', ev.target.value as IListQuery['kind'])}
        >
          <option value="all">{trans.__('any kind')}</option>
          {props.kinds.map(k => (
            <option key={k} value={k}>
              {k}
            </option>
          ))}
        </select>
        <select
          className="jp-mod-styled"
          aria-label={trans.__('Environment')}
          value={query.env}
          onChange={ev => set('env', ev.target.value)}
        >
          <option value="all">{trans.__('any env')}</option>
          {props.envs.map(e => (
            <option key={e} value={e}>
              {e}
            </option>
          ))}
        </select>
      </div>
      <div className="jp-condasvc-listbar-row">
        <input
          type="checkbox"
          className="jp-condasvc-select-all"
          aria-label={trans.__('Select all shown')}
          title={trans.__('Select all shown')}
          checked={props.allShownSelected}
          onChange={ev => props.onSelectAll(ev.target.checked)}
        />
        {props.selected.length ? (
          <span className="jp-condasvc-bulk" role="group" aria-label={trans.__('Selected services')}>
            <span className="jp-condasvc-bulk-count">{trans.__('%1 selected', props.selected.length)}</span>
            <button className="jp-mod-styled" onClick={() => props.onBulk(CommandIDs.startService)}>
              {trans.__('Start')}
            </button>
            <button className="jp-mod-styled" onClick={() => props.onBulk(CommandIDs.stopService)}>
              {trans.__('Stop')}
            </button>
            <button className="jp-mod-styled" onClick={() => props.onBulk(CommandIDs.restartService)}>
              {trans.__('Restart')}
            </button>
            <button className="jp-mod-styled jp-mod-warn" onClick={() => props.onBulk(CommandIDs.deleteService)}>
              {trans.__('Delete')}
            </button>
          </span>
        ) : (
          <span className="jp-condasvc-shown">
            {props.shown === props.total
              ? trans._n('%1 service', '%1 services', props.total)
              : trans.__('%1 of %2 shown', props.shown, props.total)}
          </span>
        )}
        <span className="jp-condasvc-sort">
          <select
            className="jp-mod-styled"
            aria-label={trans.__('Sort by')}
            value={query.sort}
            onChange={ev => set('sort', ev.target.value as SortKey)}
          >
            {SORTS.map(([key, label]) => (
              <option key={key} value={key}>
                {trans.__(label)}
              </option>
            ))}
          </select>
          <button
            className="jp-mod-styled jp-condasvc-sort-dir"
            aria-label={trans.__('Reverse the order')}
            title={trans.__('Reverse the order')}
            onClick={() => set('desc', !query.desc)}
          >
            {query.desc ? '↑' : '↓'}
          </button>
        </span>
      </div>
    </div>
  );
}

/** The rows, windowed: only those on screen (plus a few) are in the DOM. */
function ServiceRows(
  props: IServiceListProps & {
    rows: IService[];
    now: number;
    selected: Set<string>;
    onSelect: (key: string, index: number, range: boolean) => void;
    onToggle: (key: string) => void;
    onDeleteSelected: () => void;
    onSelectAll: () => void;
    focusFilter: () => void;
  }
): JSX.Element {
  const { rows, trans, commands } = props;
  const scroller = useRef<HTMLDivElement>(null);
  const [scrollTop, setScrollTop] = useState(0);
  const [viewport, setViewport] = useState(600);
  const [focus, setFocus] = useState(0);
  const focusFromKey = useRef(false);
  useLayoutEffect(() => {
    const el = scroller.current;
    if (!el) {
      return;
    }
    const measure = () => setViewport(el.clientHeight || 600);
    measure();
    const observer = new ResizeObserver(measure);
    observer.observe(el);
    return () => observer.disconnect();
  }, []);
  const count = rows.length;
  // A shorter list (a filter) clamps the scroll position: read it back.
  useEffect(() => {
    const el = scroller.current;
    if (el && el.scrollTop !== scrollTop) {
      setScrollTop(el.scrollTop);
    }
  }, [count]);
  const focusIndex = Math.min(focus, Math.max(0, count - 1));
  const [first, last] = windowRange(count, ROW_HEIGHT, scrollTop, viewport);
  // Keep the focused row on screen and focused after a key moved it.
  useEffect(() => {
    if (!focusFromKey.current) {
      return;
    }
    focusFromKey.current = false;
    const el = scroller.current;
    if (!el) {
      return;
    }
    const top = focusIndex * ROW_HEIGHT;
    if (top < el.scrollTop) {
      el.scrollTop = top;
    } else if (top + ROW_HEIGHT > el.scrollTop + el.clientHeight) {
      el.scrollTop = top + ROW_HEIGHT - el.clientHeight;
    }
    setScrollTop(el.scrollTop);
    window.requestAnimationFrame(() => el.querySelector<HTMLElement>(`li[data-index="${focusIndex}"]`)?.focus());
  }, [focusIndex, focusFromKey.current]);
  const onKeyDown = (ev: React.KeyboardEvent) => {
    const target = ev.target as HTMLElement;
    if (
      target.tagName === 'INPUT' ||
      target.tagName === 'SELECT' ||
      (target.tagName === 'BUTTON' && ev.key === 'Enter')
    ) {
      return;
    }
    const page = Math.max(1, Math.floor(viewport / ROW_HEIGHT) - 1);
    const next = moveFocus(ev.key, focusIndex, count, page);
    if (next !== null) {
      ev.preventDefault();
      focusFromKey.current = true;
      setFocus(next);
      if (ev.shiftKey && (ev.key === 'ArrowDown' || ev.key === 'ArrowUp')) {
        props.onSelect(keyOf(rows[next]), next, true);
      }
      return;
    }
    const service = rows[focusIndex];
    if (!service) {
      return;
    }
    const ref = { name: service.name, host: hostOf(service) };
    if (ev.key === 'Enter') {
      ev.preventDefault();
      void commands.execute(CommandIDs.openService, ref);
    } else if (ev.key === ' ') {
      ev.preventDefault();
      props.onToggle(keyOf(service));
    } else if (ev.key === 'Delete') {
      ev.preventDefault();
      props.onDeleteSelected();
    } else if (ev.key === 'a' && (ev.ctrlKey || ev.metaKey)) {
      ev.preventDefault();
      props.onSelectAll();
    } else if (ev.key === '/') {
      ev.preventDefault();
      props.focusFilter();
    } else if (ev.key === 'l') {
      void commands.execute(CommandIDs.showLogs, ref);
    }
  };
  return (
    <div
      ref={scroller}
      className="jp-condasvc-list-scroller"
      onScroll={ev => setScrollTop((ev.target as HTMLElement).scrollTop)}
      onKeyDown={onKeyDown}
    >
      <ul
        className="jp-condasvc-list"
        role="listbox"
        aria-multiselectable="true"
        aria-label={trans.__('Services')}
        style={{ height: count * ROW_HEIGHT, paddingTop: first * ROW_HEIGHT }}
      >
        {rows.slice(first, last).map((service, i) => (
          <ServiceRow
            key={keyOf(service)}
            model={props.model}
            commands={commands}
            trans={trans}
            now={props.now}
            onSelect={props.onSelect}
            service={service}
            index={first + i}
            selected={props.selected.has(keyOf(service))}
            focused={first + i === focusIndex}
            showHost={props.model.multiHost}
            stale={staleReason(service, props.model.hostState(hostOf(service)))}
            onFocusRow={setFocus}
          />
        ))}
      </ul>
      {count === 0 ? <div className="jp-condasvc-empty">{trans.__('No service matches the filter.')}</div> : null}
    </div>
  );
}

export function ServiceList(props: IServiceListProps): JSX.Element {
  const { model, commands, trans } = props;
  useSignal(model.changed);
  const now = useNow(1000);
  const services = model.services;
  const counts = model.counts();
  const [query, setQuery] = useState<IListQuery>(DEFAULT_QUERY);
  const [selected, setSelected] = useState<Set<string>>(() => new Set());
  const anchor = useRef<number | null>(null);
  const filterRef = useRef<HTMLInputElement>(null);
  // Time-based sorts follow the clock; the others need only a new model state.
  const clock = query.sort === 'uptime' ? now : 0;
  const rows = useMemo(() => visibleServices(services, query, clock || Date.now()), [services, query, clock]);
  const { envs, kinds } = useMemo(() => facets(services), [services]);
  const hostNames = model.multiHost ? model.hosts.map(h => h.name) : [];
  // Forget selected services that are gone.
  useEffect(() => {
    const names = new Set(services.map(keyOf));
    setSelected(sel => ([...sel].every(n => names.has(n)) ? sel : new Set([...sel].filter(n => names.has(n)))));
  }, [services]);
  const rowsRef = useRef(rows);
  rowsRef.current = rows;
  // Stable, so the memoised rows do not re-render when the list changes around them.
  const onSelect = useCallback((name: string, index: number, range: boolean) => {
    setSelected(sel => {
      const next = new Set(sel);
      if (range && anchor.current !== null) {
        const [a, b] = [Math.min(anchor.current, index), Math.max(anchor.current, index)];
        rowsRef.current.slice(a, b + 1).forEach(s => next.add(keyOf(s)));
      } else if (next.has(name)) {
        next.delete(name);
      } else {
        next.add(name);
      }
      return next;
    });
    anchor.current = index;
  }, []);
  const onToggle = useCallback((name: string) => {
    setSelected(sel => {
      const next = new Set(sel);
      if (!next.delete(name)) {
        next.add(name);
      }
      return next;
    });
  }, []);
  const shownKeys = rows.map(keyOf);
  const selectedShown = shownKeys.filter(n => selected.has(n));
  const selectAll = (all: boolean) => setSelected(all ? new Set(shownKeys) : new Set());
  const bulk = (id: string) => {
    const picked = rows.filter(s => selected.has(keyOf(s))).map(s => ({ name: s.name, host: hostOf(s) }));
    if (!picked.length) {
      return;
    }
    if (id === CommandIDs.deleteService) {
      void commands.execute(id, { services: picked }).then(() => setSelected(new Set()));
      return;
    }
    picked.forEach(ref => void commands.execute(id, ref));
  };
  return (
    <div className="jp-condasvc-panel jp-condasvc-panel-windowed">
      <div className="jp-condasvc-sticky">
        <div className="jp-condasvc-panel-header">
          <h2 className="jp-condasvc-title">{trans.__('Services')}</h2>
          <ToolbarButtonComponent
            icon={addIcon}
            tooltip={trans.__('New service')}
            onClick={() => void commands.execute(CommandIDs.newService)}
          />
          <ToolbarButtonComponent
            icon={fileUploadIcon}
            tooltip={trans.__('Import spec… (a YAML or JSON file)')}
            onClick={() => void commands.execute(CommandIDs.importSpec)}
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
            <ListToolbar
              trans={trans}
              query={query}
              setQuery={setQuery}
              envs={envs}
              kinds={kinds}
              hosts={hostNames}
              shown={rows.length}
              total={services.length}
              selected={selectedShown}
              allShownSelected={rows.length > 0 && selectedShown.length === rows.length}
              onSelectAll={selectAll}
              onBulk={bulk}
              filterRef={filterRef}
              onFilterKey={ev => {
                if (ev.key === 'ArrowDown' || ev.key === 'Enter') {
                  ev.preventDefault();
                  (
                    ev.currentTarget
                      .closest('.jp-condasvc-panel')
                      ?.querySelector('li.jp-mod-focused') as HTMLElement | null
                  )?.focus();
                } else if (ev.key === 'Escape') {
                  setQuery({ ...query, text: '' });
                }
              }}
            />
          </>
        ) : null}
      </div>
      {services.length ? (
        <ServiceRows
          {...props}
          rows={rows}
          now={now}
          selected={selected}
          onSelect={onSelect}
          onToggle={onToggle}
          onDeleteSelected={() => bulk(CommandIDs.deleteService)}
          onSelectAll={() => selectAll(true)}
          focusFilter={() => filterRef.current?.focus()}
        />
      ) : model.connection === 'open' || model.managerReachable !== null ? (
        <div className="jp-condasvc-empty">
          <p>
            {trans.__(
              "A service keeps a notebook, a Python script or a command running in the Python environment you choose (conda, venv, or the server's own), as a systemd user service: it starts on its own (at login, on a schedule, or when you click), restarts when it crashes, and keeps running after you close JupyterLab."
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
