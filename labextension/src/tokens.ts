/**
 * The model's token, the names of the server's JSON types (generated from
 * jupyter_condasvc/openapi.yaml into api.gen.ts), the messages of the two
 * sockets (not described by OpenAPI) and the command ids.
 */
import { Token } from '@lumino/coreutils';
import type { ISignal } from '@lumino/signaling';

import type { components, paths } from './api.gen';

// The wire types are generated from jupyter_condasvc/openapi.yaml (`jlpm gen:types` writes api.gen.ts,
// `jlpm check:types` fails when it is stale); the names below are what the rest of the extension uses.
type Schemas = components['schemas'];
/** The JSON body of an operation's answer with this status. */
type Answer<Op, S extends number = 200> = Op extends { responses: { [K in S]: infer R } }
  ? R extends { content: { 'application/json': infer B } }
    ? B
    : never
  : never;

/** What a user asks for (ServiceSpec). Secret values come back as null (write-only). */
export type IServiceSpec = Schemas['ServiceSpec'];
export type Kind = IServiceSpec['kind'];
export type RestartPolicy = NonNullable<IServiceSpec['restart']>;
export type IHealthCheck = NonNullable<IServiceSpec['health_check']>;

export type IServiceStatus = Schemas['Status'];
export type IHealth = NonNullable<IServiceStatus['health']>;
export type IScheduleStatus = NonNullable<IServiceStatus['schedule']>;

/** The host of a service on this server itself (issue 15). */
export const LOCAL_HOST = 'local';

/**
 * Where a service lives and whether what we know of it is current (issue 15, contract-15.md): `host` is
 * `local` or a configured host (missing means local); a down host's services keep their last known state with
 * `stale` and the reason. Written here until openapi.yaml's Service carries them; then the intersection is a no-op.
 */
export interface IHostFields {
  host?: string;
  stale?: boolean;
  stale_reason?: string;
}
export type IService = Schemas['Service'] & IHostFields;

/** The HostError JSON of a host that cannot be used now: `kind` says why, `fix` what to do. */
export interface IHostError {
  message: string;
  kind?: string;
  fix?: string | null;
  reason?: string;
  host?: string;
}
/** A host of the combined list (`hosts` of GET services and of the snapshot, and the `host` message). */
export interface IHostState {
  name: string;
  state: 'up' | 'connecting' | 'down';
  error: IHostError | null;
}
export type IEnvironment = Schemas['Environment'];

/** One run of a service (GET services/{name}/runs): one start, named by systemd's invocation ID. */
export type IRun = Schemas['Run'];
export type IRunList = Answer<paths['/condasvc/api/services/{name}/runs']['get']>;
export type IRunLog = Answer<paths['/condasvc/api/services/{name}/runs/{run_id}/logs']['get']>;

export type IPreview = Answer<paths['/condasvc/api/preview']['post']>;
export type IUnitText = Answer<paths['/condasvc/api/services/{name}/unit']['get']>;
/** The verbs of POST services/{name}/{action}. */
export type ServiceAction = paths['/condasvc/api/services/{name}/{action}']['post']['parameters']['path']['action'];

export type ILogEntry = Schemas['LogEntry'];
export type ILogMarker = NonNullable<ILogEntry['marker']>;
export type IJournalDiagnosis = Schemas['JournalDiagnosis'];
export type IJournalProblem = IJournalDiagnosis['problems'][number];
export type ILogPage = Schemas['LogPage'];
/** The query of GET services/{name}/logs, with `regex` as the client passes it (sent as 1). */
export type ILogQuery = Omit<
  NonNullable<paths['/condasvc/api/services/{name}/logs']['get']['parameters']['query']>,
  'regex'
> & {
  regex?: boolean;
};

export type IHostReport = Schemas['HostReport'];
export type ILingerState = Answer<paths['/condasvc/api/host/linger']['post']>;

/** Messages of the status stream (condasvc/api/events). */
export type StatusMessage =
  | { type: 'snapshot'; services: IService[]; hosts?: IHostState[] }
  | { type: 'status'; name: string; status: IServiceStatus; host?: string }
  | { type: 'service'; service: IService; host?: string }
  | { type: 'removed'; name: string; host?: string }
  | {
      type: 'metrics';
      services: Record<string, Pick<IServiceStatus, 'memory_current' | 'cpu_usage_nsec'>>;
      host?: string;
    }
  | { type: 'manager'; reachable: false; message: string; host?: string }
  | { type: 'host'; host: IHostState };

/** Messages of the log follow socket (condasvc/api/services/{name}/logs/follow). */
export type FollowMessage =
  | { type: 'hello'; name: string; unit: string; journal: IJournalDiagnosis | null; host?: string }
  /** Another host is out of reach; the server resumes the follow after the last cursor when it is back. */
  | { type: 'lost'; host: string; error: IHostError | null }
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
export type DisplayState = 'running' | 'starting' | 'stopping' | 'stopped' | 'failed' | 'scheduled' | 'unknown';

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
  /** The hosts of the combined list, `local` first; only `local` when no other host is configured. */
  readonly hosts: ReadonlyArray<IHostState>;
  /** More than one host: the list shows a host column and filter, the form a Host field. */
  readonly multiHost: boolean;
  /** A service by name on a host (default local). */
  get(name: string, host?: string): IService | undefined;
  hostState(name: string): IHostState | undefined;
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
