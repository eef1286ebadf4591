/** Run as service: a free name, and the services that already run a file (pure). */
import type { IService } from './tokens';

/** A name not yet taken: "report", else "report-2", "report-3", ... */
export function uniqueName(base: string, services: ReadonlyArray<{ name: string }>): string {
  const taken = new Set(services.map(s => s.name));
  if (!taken.has(base)) {
    return base;
  }
  for (let i = 2; ; i++) {
    const name = `${base.slice(0, 60)}-${i}`;
    if (!taken.has(name)) {
      return name;
    }
  }
}

/** The services whose script or notebook is this file (a Lab path, relative to the server root). */
export function servicesOfPath(services: ReadonlyArray<IService>, path: string, serverRoot = ''): IService[] {
  const clean = (p: string) => p.replace(/^\.\//, '').replace(/\/+/g, '/');
  const root = serverRoot.replace(/\/+$/, '');
  const wanted = clean(path);
  return services.filter(s => {
    const p = s.spec.path;
    if (!p || s.spec.kind === 'command') {
      return false;
    }
    const c = clean(p);
    return c === wanted || (!!root && c === `${root}/${wanted}`);
  });
}
