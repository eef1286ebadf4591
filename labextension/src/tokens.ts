/**
 * The model's token, the types mirroring the server's JSON (see
 * jupyter_condasvc/openapi.yaml, status.py and journal.py) and the command ids.
 */
import { Token } from '@lumino/coreutils';
import type { ISignal } from '@lumino/signaling';

export type Kind = 'script' | 'command' | 'notebook';
export type RestartPolicy = 'no' | 'on-failure' | 'always';

export interface IHealthCheck {
  type: 'http' | 'tcp';
  url?: string | null;
  host?: string | null;
  port?: number | null;
  interval_sec?: number;
  timeout_sec?: number;
  start_period_sec?: number;
  failure_threshold?: number;
}

/** What a user asks for (ServiceSpec). */
export interface IServiceSpec {
  name: string;
  kind: Kind;
  env: string;
  path?: string | null;
  argv?: string[] | null;
  args?: string[];
  cwd?: string | null;
  /** Secret values come back as null (write-only). */
  environment?: Record<string, string | null>;
  secrets?: string[];
  restart?: RestartPolicy | null;
  restart_sec?: number | null;
  start_limit_burst?: number | null;
  start_limit_interval_sec?: number | null;
  memory_max?: string | null;
  cpu_quota?: string | null;
  enabled?: boolean;
  description?: string;
  parameters?: Record<string, unknown>;
  output?: string | null;
  schedule?: string | null;
  activation?: boolean;
  /** Restart it (when running) each time its script or notebook file changes: a .path unit. */
  restart_on_change?: boolean;
  health_check?: IHealthCheck | null;
}

export interface IHealth {
  state: 'starting' | 'healthy' | 'unhealthy';
  consecutive_failures?: number;
  last_probe?: string | null;
  last_ok?: string | null;
  last_error?: string | null;
  latency_ms?: number | null;
}

export interface IScheduleStatus {
  timer_state?: string | null;
  /** The timer runs, so the schedule fires (false: paused, or never started). */
  armed?: boolean;
  timer_enabled?: string | null;
  next_run?: string | null;
  last_run?: string | null;
}

export interface IServiceStatus {
  load_state: string | null;
  active_state: string | null;
  sub_state: string | null;
  result: string | null;
  unit_file_state: string | null;
  main_pid: number | null;
  n_restarts: number | null;
  exec_main_status?: number | null;
  exec_main_code?: number | null;
  /** Why the main process last ended, in words ("killed for memory: ..."); null while running. */
  exit_reason?: string | null;
  active_enter_timestamp?: string | null;
  inactive_enter_timestamp?: string | null;
  state_change_timestamp?: string | null;
  status_text?: string | null;
  memory_current: number | null;
  cpu_usage_nsec: number | null;
  fragment_path?: string | null;
  schedule?: IScheduleStatus;
  health?: IHealth | null;
  /** Failed, and its Restart= policy would have restarted it: the start limit stopped a crash loop. */
  start_limit_hit?: boolean;
  /** Restarting fast: two or more automatic restarts, the last crash recent. */
  crash_looping?: boolean;
}

/** One run of a service (GET services/{name}/runs): one start, named by systemd's invocation ID. */
export interface IRun {
  id: string;
  trigger: 'manual' | 'timer' | 'restart' | 'boot';
  start: string;
  end: string | null;
  duration_sec: number | null;
  result: string | null;
  exit_code: string | null;
  exit_status: number | null;
  signal?: string | null;
  state: 'running' | 'finished' | 'failed' | 'unknown';
  has_notebook: boolean;
  progress?: string | null;
}

export interface IRunLog {
  name: string;
  unit: string;
  run: string;
  entries: ILogEntry[];
  more_after: boolean;
}

export interface IRunList {
  name: string;
  unit: string;
  runs: IRun[];
}

export interface IService {
  name: string;
  unit: string;
  spec: IServiceSpec;
  resolved: {
    exec_argv?: string[];
    working_directory?: string;
    env_prefix?: string;
    env_name?: string;
  };
  created?: number | null;
  updated?: number | null;
  /** When an edit last changed what the process runs with (epoch seconds). */
  unit_changed?: number | null;
  status: IServiceStatus;
  warnings?: string[];
}

export interface IEnvironment {
  name: string;
  prefix: string;
  python: string | null;
  python_version: string | null;
  has_ipykernel: boolean;
  root: string | null;
  is_root: boolean;
  /** How it was made: conda and pixi are activated like conda, the others as venvs. */
  kind?: 'conda' | 'pixi' | 'venv' | 'virtualenv' | 'uv';
  /** The environment the Jupyter server runs in. */
  is_server?: boolean;
  /** A short name to show. */
  label?: string;
}

export interface IPreview {
  unit_name: string;
  unit: string;
  variables: string[];
  activation: Record<string, string>;
  timer: string | null;
  /** restart_on_change: the .path unit watching the file. */
  path_unit?: string | null;
  next_runs?: string[];
  warnings: string[];
}

export interface IUnitText {
  unit_name: string;
  path: string;
  unit: string | null;
}

export interface ILogMarker {
  kind: 'suppressed';
  count: number;
  scope: string;
}

export interface ILogEntry {
  cursor: string;
  realtime: string;
  realtime_usec: number;
  priority: number | null;
  pid: number | null;
  identifier: string | null;
  source: 'service' | 'manager' | 'journald';
  message: string;
  escaped?: boolean;
  marker?: ILogMarker;
  /** Written about this service by another process of the user (may be spoofed). */
  untrusted?: boolean;
  /** With untrusted: the writer's own unit or command. */
  origin?: string | null;
}

export interface IJournalProblem {
  code: string;
  message: string;
  fix: string;
}

export interface IJournalDiagnosis {
  ok: boolean;
  /** ok, no-logs-yet, runtime-journal, not-flushed, volatile, storage-none, split-none, unreadable */
  state: string;
  /** What a user sees, naming the exact path. */
  message: string;
  path: string;
  storage: string;
  problems: IJournalProblem[];
  fix: string | null;
  notes?: string[];
}

export interface ILogPage {
  name: string;
  unit: string;
  entries: ILogEntry[];
  first_cursor: string | null;
  last_cursor: string | null;
  more_before: boolean;
  more_after: boolean;
  scanned: number;
  scan_limited: boolean;
  journal: IJournalDiagnosis;
}

export interface ILogQuery {
  n?: number;
  before?: string;
  after?: string;
  priority?: string;
  since?: string;
  until?: string;
  text?: string;
  regex?: boolean;
  format?: 'json' | 'text';
}

export interface IHostReport {
  user: string;
  manager: {
    reachable: boolean;
    version?: string;
    control_group?: string | null;
    error?: string;
  };
  linger: { enabled: boolean; fix?: string | null };
  journal: {
    persistent: boolean;
    /** False only when logs cannot be read (not before anything has logged). */
    readable: boolean;
    state: string;
    message: string;
    path: string;
    error?: string | null;
    fix?: string | null;
  };
  limits: {
    controllers: string[];
    memory_enforced: boolean;
    cpu_enforced: boolean;
    fix?: string;
  };
}

/** Messages of the status stream (condasvc/api/events). */
export type StatusMessage =
  | { type: 'snapshot'; services: IService[] }
  | { type: 'status'; name: string; status: IServiceStatus }
  | { type: 'service'; service: IService }
  | { type: 'removed'; name: string }
  | {
      type: 'metrics';
      services: Record<
        string,
        { memory_current: number | null; cpu_usage_nsec: number | null }
      >;
    }
  | { type: 'manager'; reachable: false; message: string };

/** Messages of the log follow socket (condasvc/api/services/{name}/logs/follow). */
export type FollowMessage =
  | { type: 'hello'; name: string; unit: string; journal: IJournalDiagnosis }
  | { type: 'entries'; entries: ILogEntry[]; cursor: string }
  | {
      type: 'dropped';
      count: number;
      after: string | null;
      until: string;
      message: string;
    }
  | { type: 'error'; message: string };

/** The state a list item shows: systemd's active state folded for people. */
export type DisplayState =
  | 'running'
  | 'starting'
  | 'stopping'
  | 'stopped'
  | 'failed'
  | 'scheduled'
  | 'unknown';

export type ConnectionState = 'connecting' | 'open' | 'closed';

/** A minimal WebSocket, so the model can be fed by a fake in tests. */
export interface ISocketLike {
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: unknown) => void) | null;
  onerror: ((ev: unknown) => void) | null;
  close(code?: number, reason?: string): void;
}

export interface IServicesModel {
  readonly services: ReadonlyArray<IService>;
  readonly connection: ConnectionState;
  /** null: unknown yet; false: the server said the user manager is unreachable. */
  readonly managerReachable: boolean | null;
  readonly managerMessage: string;
  readonly host: IHostReport | null;
  get(name: string): IService | undefined;
  counts(): Record<DisplayState, number>;
  /** Emitted on any change of the list or of a service. */
  readonly changed: ISignal<IServicesModel, void>;
  /** Emitted when a service enters the failed state (not for ones failed at snapshot time). */
  readonly serviceFailed: ISignal<IServicesModel, IService>;
  readonly connectionChanged: ISignal<IServicesModel, ConnectionState>;
  refreshHost(): Promise<void>;
}

export const IServicesModel = new Token<IServicesModel>(
  'jupyter_condasvc:IServicesModel',
  'The live list of condasvc services, fed by the status stream.'
);

export namespace CommandIDs {
  export const openPanel = 'condasvc:open-panel';
  export const newService = 'condasvc:new-service';
  export const editService = 'condasvc:edit-service';
  export const openService = 'condasvc:open-service';
  export const startService = 'condasvc:start-service';
  export const stopService = 'condasvc:stop-service';
  export const restartService = 'condasvc:restart-service';
  export const resetFailedService = 'condasvc:reset-failed-service';
  export const pauseService = 'condasvc:pause-service';
  export const resumeService = 'condasvc:resume-service';
  export const resetAndStartService = 'condasvc:reset-and-start-service';
  export const runNowService = 'condasvc:run-now-service';
  export const enableService = 'condasvc:enable-service';
  export const disableService = 'condasvc:disable-service';
  export const deleteService = 'condasvc:delete-service';
  export const duplicateService = 'condasvc:duplicate-service';
  export const exportSpec = 'condasvc:export-spec';
  export const importSpec = 'condasvc:import-spec';
  export const showLogs = 'condasvc:show-logs';
  export const runAsService = 'condasvc:run-as-service';
  export const runFileAsService = 'condasvc:run-file-as-service';
  export const openOutput = 'condasvc:open-output';
  export const refreshHost = 'condasvc:refresh-host';
  export const enableLinger = 'condasvc:enable-linger';
}
