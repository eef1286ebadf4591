/**
 * The REST and WebSocket client of the condasvc server extension: one request
 * helper over ServerConnection.makeRequest and one method per endpoint.
 */
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

import type {
  IEnvironment,
  IHostReport,
  IHostState,
  ILogPage,
  ILogQuery,
  IPreview,
  IRunList,
  IRunLog,
  IService,
  ILingerState,
  IServiceSpec,
  ISocketLike,
  IUnitText,
  ServiceAction
} from './tokens';
import { LOCAL_HOST } from './tokens';

export type { ServiceAction } from './tokens';

const API = 'condasvc/api';

/** An error answer of the server: its `message`, and the spec field it names (400). */
export class CondaSvcError extends ServerConnection.ResponseError {
  constructor(
    response: Response,
    message: string,
    readonly field: string | null,
    readonly reason: string | null
  ) {
    super(response, message);
  }
}

function queryString(query: Record<string, string | number | boolean | undefined>): string {
  const parts: string[] = [];
  for (const [key, value] of Object.entries(query)) {
    if (value === undefined || value === '' || value === false) {
      continue;
    }
    const text = value === true ? '1' : String(value);
    parts.push(`${encodeURIComponent(key)}=${encodeURIComponent(text)}`);
  }
  return parts.length ? `?${parts.join('&')}` : '';
}

/**
 * The client of one host's services: `local` (this server's own; no `host` parameter is sent) or a configured
 * host, whose name every service request and socket carries as `?host=` (contract-15.md). `at(host)` gives the
 * client of another host; GET services and GET host are about the server, not one host.
 */
export class CondaSvcAPI {
  constructor(
    readonly serverSettings: ServerConnection.ISettings = ServerConnection.makeSettings(),
    readonly hostName: string = LOCAL_HOST
  ) {}

  /** The client of a host's services (the same settings). */
  at(host: string | null | undefined): CondaSvcAPI {
    const name = host || LOCAL_HOST;
    if (name === this.hostName) {
      return this;
    }
    let client = this._hosts.get(name);
    if (!client) {
      client = new CondaSvcAPI(this.serverSettings, name);
      this._hosts.set(name, client);
    }
    return client;
  }

  url(...parts: string[]): string {
    return URLExt.join(this.serverSettings.baseUrl, API, ...parts.map(encodeURIComponent));
  }

  /** The query string of a request about this host's services. */
  private _query(query: Record<string, string | number | boolean | undefined> = {}): string {
    return queryString(this.hostName === LOCAL_HOST ? query : { ...query, host: this.hostName });
  }

  /** One request; rejects with CondaSvcError carrying the server's message. */
  async request<T>(path: string, init: RequestInit = {}): Promise<T> {
    const response = await this.raw(path, init);
    if (response.status === 204) {
      return undefined as T;
    }
    const text = await response.text();
    return (text ? JSON.parse(text) : undefined) as T;
  }

  async raw(path: string, init: RequestInit = {}): Promise<Response> {
    let response: Response;
    try {
      response = await ServerConnection.makeRequest(path, init, this.serverSettings);
    } catch (error) {
      throw new ServerConnection.NetworkError(error as TypeError);
    }
    if (!response.ok) {
      let message = response.statusText || `HTTP ${response.status}`;
      let field: string | null = null;
      let reason: string | null = null;
      try {
        const body = (await response.json()) as { message?: string; field?: string; reason?: string };
        message = body.message || message;
        field = body.field ?? null;
        reason = body.reason ?? null;
      } catch {
        // not JSON: keep the status text
      }
      throw new CondaSvcError(response, message, field, reason);
    }
    return response;
  }

  environments(refresh = false): Promise<{ environments: IEnvironment[] }> {
    return this.request(this.url('environments') + this._query({ refresh }));
  }

  /** Every host's services (the combined list, `hosts` with each host's state), or one host's. */
  services(host?: string): Promise<{ services: IService[]; hosts?: IHostState[] }> {
    return this.request(this.url('services') + queryString({ host }));
  }

  service(name: string): Promise<IService> {
    return this.request(this.url('services', name) + this._query());
  }

  create(spec: IServiceSpec): Promise<IService> {
    return this.request(this.url('services') + this._query(), { method: 'POST', body: JSON.stringify(spec) });
  }

  /** JSON merge patch of a spec (null resets a field). */
  update(name: string, patch: Partial<Record<keyof IServiceSpec, unknown>>): Promise<IService> {
    return this.request(this.url('services', name) + this._query(), {
      method: 'PATCH',
      body: JSON.stringify(patch)
    });
  }

  remove(name: string): Promise<void> {
    return this.request(this.url('services', name) + this._query(), { method: 'DELETE' });
  }

  preview(spec: IServiceSpec): Promise<IPreview> {
    return this.request(this.url('preview') + this._query(), { method: 'POST', body: JSON.stringify(spec) });
  }

  unit(name: string): Promise<IUnitText> {
    return this.request(this.url('services', name, 'unit') + this._query());
  }

  act(name: string, action: ServiceAction): Promise<IService> {
    return this.request(this.url('services', name, action) + this._query(), { method: 'POST' });
  }

  /** The service's runs, newest first. */
  runs(name: string, limit = 50): Promise<IRunList> {
    return this.request(this.url('services', name, 'runs') + this._query({ limit }));
  }

  /** One run's log: its output and the manager's entries about it, oldest first. */
  runLog(name: string, run: string): Promise<IRunLog> {
    return this.request(this.url('services', name, 'runs', run, 'logs') + this._query());
  }

  /** The executed copy a notebook run kept (nbformat JSON). */
  runNotebook(name: string, run: string): Promise<Record<string, unknown>> {
    return this.request(this.url('services', name, 'runs', run, 'notebook') + this._query());
  }

  logs(name: string, query: ILogQuery = {}): Promise<ILogPage> {
    return this.request(this.url('services', name, 'logs') + this._query({ ...query, format: 'json' }));
  }

  /** The log as a download (format=text or json), for a Blob. */
  async logsDownload(name: string, query: ILogQuery): Promise<Blob> {
    const response = await this.raw(this.url('services', name, 'logs') + this._query({ ...query }));
    return response.blob();
  }

  host(): Promise<IHostReport> {
    return this.request(this.url('host'));
  }

  /** Linger for the server's own user, through systemd-logind (POST host/linger). */
  setLinger(enabled: boolean): Promise<ILingerState> {
    return this.request(this.url('host', 'linger'), { method: 'POST', body: JSON.stringify({ enabled }) });
  }

  /** A WebSocket on a path under condasvc/api, authenticated like Jupyter's own sockets. */
  openSocket(path: string[], query: Record<string, string | number | boolean | undefined> = {}): ISocketLike {
    const settings = this.serverSettings;
    let url = URLExt.join(settings.wsUrl, API, ...path.map(encodeURIComponent)) + queryString(query);
    const token = settings.token;
    if (settings.appendToken && token) {
      url += (url.includes('?') ? '&' : '?') + `token=${encodeURIComponent(token)}`;
    }
    return new settings.WebSocket(url) as unknown as ISocketLike;
  }

  /** The status stream of every service. */
  openEvents(): ISocketLike {
    return this.openSocket(['events']);
  }

  /** Follow a service's log from a cursor (no gap, no duplicate) or the tail. */
  openFollow(name: string, query: { cursor?: string; n?: number; priority?: string }): ISocketLike {
    return this.openSocket(
      ['services', name, 'logs', 'follow'],
      this.hostName === LOCAL_HOST ? query : { ...query, host: this.hostName }
    );
  }

  private _hosts = new Map<string, CondaSvcAPI>();
}
