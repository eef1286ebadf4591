/**
 * The REST and WebSocket client of the condasvc server extension: one request
 * helper over ServerConnection.makeRequest and one method per endpoint.
 */
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

import type {
  IEnvironment,
  IHostReport,
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

export class CondaSvcAPI {
  constructor(readonly serverSettings: ServerConnection.ISettings = ServerConnection.makeSettings()) {}

  url(...parts: string[]): string {
    return URLExt.join(this.serverSettings.baseUrl, API, ...parts.map(encodeURIComponent));
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
    return this.request(this.url('environments') + queryString({ refresh }));
  }

  services(): Promise<{ services: IService[] }> {
    return this.request(this.url('services'));
  }

  service(name: string): Promise<IService> {
    return this.request(this.url('services', name));
  }

  create(spec: IServiceSpec): Promise<IService> {
    return this.request(this.url('services'), { method: 'POST', body: JSON.stringify(spec) });
  }

  /** JSON merge patch of a spec (null resets a field). */
  update(name: string, patch: Partial<Record<keyof IServiceSpec, unknown>>): Promise<IService> {
    return this.request(this.url('services', name), { method: 'PATCH', body: JSON.stringify(patch) });
  }

  remove(name: string): Promise<void> {
    return this.request(this.url('services', name), { method: 'DELETE' });
  }

  preview(spec: IServiceSpec): Promise<IPreview> {
    return this.request(this.url('preview'), { method: 'POST', body: JSON.stringify(spec) });
  }

  unit(name: string): Promise<IUnitText> {
    return this.request(this.url('services', name, 'unit'));
  }

  act(name: string, action: ServiceAction): Promise<IService> {
    return this.request(this.url('services', name, action), { method: 'POST' });
  }

  /** The service's runs, newest first. */
  runs(name: string, limit = 50): Promise<IRunList> {
    return this.request(this.url('services', name, 'runs') + queryString({ limit }));
  }

  /** One run's log: its output and the manager's entries about it, oldest first. */
  runLog(name: string, run: string): Promise<IRunLog> {
    return this.request(this.url('services', name, 'runs', run, 'logs'));
  }

  /** The executed copy a notebook run kept (nbformat JSON). */
  runNotebook(name: string, run: string): Promise<Record<string, unknown>> {
    return this.request(this.url('services', name, 'runs', run, 'notebook'));
  }

  logs(name: string, query: ILogQuery = {}): Promise<ILogPage> {
    return this.request(this.url('services', name, 'logs') + queryString({ ...query, format: 'json' }));
  }

  /** The log as a download (format=text or json), for a Blob. */
  async logsDownload(name: string, query: ILogQuery): Promise<Blob> {
    const response = await this.raw(this.url('services', name, 'logs') + queryString({ ...query }));
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
    return this.openSocket(['services', name, 'logs', 'follow'], query);
  }
}
