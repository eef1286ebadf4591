/**
 * How failures the model signalled together become notifications: a few
 * services each get their own toast (with their recovery action); many
 * failing at once (more than `maxSingle`) get one grouped toast.
 */
import { serviceLabel } from './hosts';
import type { IService } from './tokens';

export type FailureToast = { kind: 'group'; names: string[] } | { kind: 'single'; service: IService };

export function failureToasts(batch: ReadonlyArray<IService>, maxSingle = 2): FailureToast[] {
  if (batch.length === 0) {
    return [];
  }
  if (batch.length > maxSingle) {
    return [{ kind: 'group', names: batch.map(s => serviceLabel(s.name, s.host)) }];
  }
  return batch.map(service => ({ kind: 'single', service }));
}
