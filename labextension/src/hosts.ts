/**
 * The host dimension of services (issue 15), pure: which host a service is on, the key
 * the model and the views use for (host, name), and the words of a host's error.
 */
import { IHostError, IHostState, IService, LOCAL_HOST } from './tokens';

/** The host a service is on (a service without `host` is local). */
export function hostOf(service: Pick<IService, 'host'>): string {
  return service.host || LOCAL_HOST;
}

/** One key per (host, name): a name is unique on its host only. Host names hold no NUL. */
export function serviceKey(name: string, host?: string | null): string {
  return `${host || LOCAL_HOST}\u0000${name}`;
}

/** The key of a service. */
export function keyOf(service: Pick<IService, 'name' | 'host'>): string {
  return serviceKey(service.name, service.host);
}

/** "name" for a local service, "name on host" for another host's (titles, dialogs). */
export function serviceLabel(name: string, host?: string | null): string {
  return !host || host === LOCAL_HOST ? name : `${name} @ ${host}`;
}

/**
 * A HostError's reason and fix apart: the server's `message` ends with the fix
 * (HostError joins them), the banner shows them on lines of their own.
 */
export function hostErrorParts(error: IHostError | null | undefined): { message: string; fix: string } {
  if (!error) {
    return { message: '', fix: '' };
  }
  const fix = (error.fix ?? '').trim();
  let message = (error.message ?? '').trim();
  if (fix && message.endsWith(fix)) {
    message = message.slice(0, message.length - fix.length).trim();
  }
  return { message, fix };
}

/** The hosts in the order shown: local first, then the configured ones as the server lists them. */
export function orderHosts(hosts: Iterable<IHostState>): IHostState[] {
  const all = [...hosts];
  return [...all.filter(h => h.name === LOCAL_HOST), ...all.filter(h => h.name !== LOCAL_HOST)];
}

/**
 * Why what we know of a service may be out of date, '' when it is current: the server marked it
 * stale (its host is down), or its host's last known state is down.
 */
export function staleReason(service: IService, host: IHostState | undefined): string {
  if (service.stale) {
    return service.stale_reason || host?.error?.message || 'its host cannot be reached';
  }
  return host && host.state === 'down' ? host.error?.message || 'its host cannot be reached' : '';
}

/** Host names in list order: local first, then by name. */
export function compareHosts(a: string, b: string): number {
  if (a === b) {
    return 0;
  }
  if (a === LOCAL_HOST || b === LOCAL_HOST) {
    return a === LOCAL_HOST ? -1 : 1;
  }
  return a < b ? -1 : 1;
}
