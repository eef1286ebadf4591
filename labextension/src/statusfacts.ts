/**
 * The words of a service tab's facts (pure): health, progress, last exit, since, memory and CPU.
 *
 * Rules (issue 12, item 5): a probe result is shown only for the run it probed, and never for a
 * stopped service; a healthy probe does not carry an older error; Progress is hidden when it only
 * repeats the prober's text; "Last exit", "Since" and a notebook's final "finished: ..." survive
 * systemd unloading the stopped unit (which zeroes its properties) by falling back to what was seen
 * before and to the latest run; an unmeasured Memory/CPU says why instead of "—".
 */
import type { IHostReport, IRun, IService, IServiceStatus } from './tokens';

/** A translation function: `__('text %1', arg)`. */
export type Tr = (msgid: string, ...args: Array<string | number>) => string;

/** What a tab remembers of a service's last end, seen in an earlier status. */
export interface IEndFacts {
  /** Words for the last exit ("exited with status 3.", "stopped") or null. */
  exit: string | null;
  /** When the current state began (ISO). */
  since: string | null;
  /** The last STATUS= text of a run that ended (a notebook's "finished: 5 cells in 12.2s"). */
  finalText: string | null;
}

const RUNNING = new Set(['active', 'activating', 'reloading', 'deactivating']);

export function isRunning(status: IServiceStatus): boolean {
  return RUNNING.has(status.active_state ?? '');
}

/** The last exit as the unit's own properties tell it, or null when they tell nothing. */
export function exitFromStatus(status: IServiceStatus, __: Tr): string | null {
  if (status.exit_reason) {
    return status.exit_reason;
  }
  const code = status.exec_main_code;
  if (code === null || code === undefined || code === 0) {
    return null;
  }
  if (code === 1) {
    return status.exec_main_status
      ? __('exited with status %1.', status.exec_main_status)
      : __('exited cleanly (status 0).');
  }
  return __('signal %1', status.exec_main_status ?? '?');
}

/** The newest run that has ended (runs newest first), or null. */
export function lastEndedRun(runs: ReadonlyArray<IRun>): IRun | null {
  return runs.find(r => r.state !== 'running' && !!r.end) ?? null;
}

/** The last exit as the journal's run record tells it, or null. */
export function exitFromRun(run: IRun | null | undefined, __: Tr): string | null {
  if (!run || run.state === 'running' || !run.end) {
    return null;
  }
  if (run.signal) {
    return __('killed by %1.', run.signal);
  }
  if (run.exit_status !== null && run.exit_status !== undefined) {
    return run.exit_status === 0 ? __('exited cleanly (status 0).') : __('exited with status %1.', run.exit_status);
  }
  return run.result && run.result !== 'success' ? __('failed (%1).', run.result) : __('stopped.');
}

/**
 * Merge a new status into what was remembered: properties systemd zeroed when it unloaded the
 * stopped unit do not erase what the tab saw before. A new start clears the remembered end.
 */
export function rememberEnd(previous: IEndFacts | null, status: IServiceStatus, __: Tr): IEndFacts {
  const running = isRunning(status);
  const since = (running ? status.active_enter_timestamp : status.state_change_timestamp) || null;
  const exit = exitFromStatus(status, __);
  if (running) {
    // the run in progress: its own since; the previous exit stays the last exit until this one ends
    return { exit: exit ?? previous?.exit ?? null, since, finalText: null };
  }
  const text = status.status_text || null;
  return {
    exit: exit ?? previous?.exit ?? null,
    since: since ?? previous?.since ?? null,
    finalText: text ?? previous?.finalText ?? null
  };
}

/** "Last exit": the unit's words, else the remembered, else the latest ended run's; "none yet" when it never ended. */
export function lastExitText(
  status: IServiceStatus,
  remembered: IEndFacts | null,
  lastRun: IRun | null | undefined,
  __: Tr
): string {
  return exitFromStatus(status, __) ?? remembered?.exit ?? exitFromRun(lastRun, __) ?? __('none yet');
}

/** "Since": when the present state began (ISO), falling back to the remembered one and the latest run's end/start. */
export function sinceIso(
  status: IServiceStatus,
  remembered: IEndFacts | null,
  lastRun: IRun | null | undefined
): string | null {
  const running = isRunning(status);
  const own = running ? status.active_enter_timestamp : status.state_change_timestamp;
  if (own) {
    return own;
  }
  if (remembered?.since) {
    return remembered.since;
  }
  return running || !lastRun ? null : (lastRun.end ?? null);
}

/** The health fact's words, or null for no Health row (no health check). */
export function healthText(service: IService, __: Tr): string | null {
  const status = service.status;
  const health = status.health;
  if (health === undefined && !service.spec.health_check) {
    return null;
  }
  if (status.active_state !== 'active' && status.active_state !== 'activating' && status.active_state !== 'reloading') {
    return __('not checked: the service is not running');
  }
  if (!health) {
    return __('no probe yet');
  }
  // a result written by an earlier run's prober says nothing about this run
  const started = Date.parse(status.active_enter_timestamp ?? '');
  const probed = Date.parse(health.last_probe ?? '');
  if (!Number.isNaN(started) && (Number.isNaN(probed) || probed < started - 1000)) {
    return __('no probe yet');
  }
  const ms =
    health.latency_ms !== null && health.latency_ms !== undefined ? ` · ${Math.round(health.latency_ms)} ms` : '';
  if (health.state === 'healthy') {
    return `${__('healthy')}${ms}`;
  }
  const failures = health.consecutive_failures ? ` · ${__('%1 failed in a row', health.consecutive_failures)}` : '';
  const error = health.last_error ? ` · ${health.last_error}` : '';
  return `${health.state === 'unhealthy' ? __('unhealthy') : __('starting')}${failures}${error}`;
}

/** The prober's own STATUS= words ("healthy (12 ms)", "unhealthy: ...", "starting: ..."). */
const PROBER_TEXT = /^(healthy \(\d+ ms\)|unhealthy: |starting: )/;

/**
 * The Progress fact's words, or null for no Progress row: the running program's STATUS= text,
 * or (stopped) the final text of the run that ended; never a copy of the Health row.
 */
export function progressText(service: IService, remembered: IEndFacts | null, __: Tr): string | null {
  const status = service.status;
  const text = status.status_text || (isRunning(status) ? null : (remembered?.finalText ?? null));
  if (!text) {
    return null;
  }
  if (service.spec.kind !== 'notebook' && (service.spec.health_check || status.health) && PROBER_TEXT.test(text)) {
    return null;
  }
  return isRunning(status) || status.status_text ? text : __('%1 (last run)', text);
}

/** Why a resource is not measured here, from the host report; null when it should be. */
export function unmeasuredReason(which: 'memory' | 'cpu', host: IHostReport | null, __: Tr): string | null {
  if (!host) {
    return null;
  }
  const controllers = host.limits?.controllers ?? [];
  if (controllers.includes(which)) {
    return null;
  }
  return which === 'memory'
    ? __('no memory controller for user services (cgroup v1 or not delegated)')
    : __('no cpu controller for user services (cgroup v1 or not delegated)');
}

/** A Memory or CPU fact: the figure, or words for why there is none. */
export function resourceText(
  which: 'memory' | 'cpu',
  value: number | null | undefined,
  status: IServiceStatus,
  host: IHostReport | null,
  format: (v: number) => string,
  __: Tr
): { text: string; reason?: string } {
  if (value !== null && value !== undefined) {
    return { text: format(value) };
  }
  if (!isRunning(status)) {
    return { text: __('not running') };
  }
  const reason = unmeasuredReason(which, host, __);
  if (reason) {
    return { text: __('not measured on this host'), reason };
  }
  return { text: __('not reported by systemd for this unit') };
}
