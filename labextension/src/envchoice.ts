/** Which environment a new service starts with, and how the form shows one (pure). */
import type { IEnvironment, Kind } from './tokens';

/** True when the environment can run this kind of service (a Python; ipykernel for notebooks). */
export function envFits(env: IEnvironment, kind: Kind): boolean {
  if (kind === 'command') {
    return true;
  }
  return !!env.python && (kind !== 'notebook' || env.has_ipykernel);
}

/**
 * The default environment for a new service: the first one (the server lists
 * its own first) that can run the kind; never one without Python for scripts
 * and notebooks. For commands, the first with a Python still wins, then any.
 * Null when none fits: the form then asks rather than guess.
 */
export function defaultEnvironment(envs: ReadonlyArray<IEnvironment>, kind: Kind): IEnvironment | null {
  const withPython = envs.filter(e => !!e.python);
  if (kind === 'command') {
    return withPython[0] ?? envs[0] ?? null;
  }
  return withPython.find(e => envFits(e, kind)) ?? null;
}

const KIND_NAMES: Record<string, string> = {
  conda: 'conda',
  pixi: 'pixi',
  venv: 'venv',
  virtualenv: 'virtualenv',
  uv: 'uv venv'
};

/** "ml — conda · Python 3.11 · ipykernel", "./.venv — venv · no Python". */
export function envOptionText(env: IEnvironment): string {
  const name = env.label || env.name;
  const parts = [KIND_NAMES[env.kind ?? 'conda'] ?? env.kind ?? 'conda'];
  parts.push(env.python ? `Python ${env.python_version ?? '(version unknown)'}` : 'no Python');
  if (env.has_ipykernel) {
    parts.push('ipykernel');
  }
  return `${name} — ${parts.join(' · ')}`;
}

/** Why an environment cannot run this kind, or '' when it can. */
export function envProblem(env: IEnvironment, kind: Kind): string {
  if (kind === 'command') {
    return '';
  }
  if (!env.python) {
    return `This environment has no Python interpreter (${env.prefix}/bin/python), so it cannot run a ${kind}. Choose another, or install Python into it.`;
  }
  if (kind === 'notebook' && !env.has_ipykernel) {
    return 'This environment has no ipykernel, so it cannot run notebooks. Choose another, or install ipykernel into it.';
  }
  return '';
}
