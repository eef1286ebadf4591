/**
 * Which conda environment a notebook's kernel runs in.
 *
 * First ask the running kernel for `sys.prefix` (a user expression on an
 * empty, silent execute request: nothing shows in the notebook, nothing
 * enters its history). Without a running kernel, fall back to the
 * kernelspec: an argv[0] of `<prefix>/bin/python…` names the prefix. The
 * prefix is then matched against the environments the server found; an
 * unknown prefix is still usable, since the API takes an absolute prefix as
 * `env`.
 */
import type { ISessionContext } from '@jupyterlab/apputils';
import type { KernelSpec } from '@jupyterlab/services';

import type { IEnvironment } from './tokens';

/** Parse a Python repr of a str, as text/plain of a user expression gives it. */
export function parsePythonString(repr: string): string | null {
  const m = /^(['"])(.*)\1$/s.exec(repr.trim());
  if (!m) {
    return null;
  }
  return m[2].replace(/\\(['"\\])/g, '$1');
}

/** `<prefix>/bin/python3.11` → `<prefix>`; null when argv[0] is not an absolute interpreter path. */
export function prefixFromArgv(argv: ReadonlyArray<string> | undefined): string | null {
  const exe = argv?.[0];
  if (!exe || !exe.startsWith('/')) {
    return null;
  }
  const m = /^(.*)\/bin\/python[0-9.]*$/.exec(exe);
  return m ? m[1] || '/' : null;
}

/** The env name for a prefix, or the prefix itself when the server does not know it. */
export function envForPrefix(prefix: string, environments: ReadonlyArray<IEnvironment>): string {
  const clean = prefix.replace(/\/+$/, '');
  const env = environments.find(e => e.prefix.replace(/\/+$/, '') === clean);
  return env ? env.name : clean;
}

/**
 * The environment a notebook's kernel runs in: the name of the listed environment with its prefix, the
 * prefix itself when none is listed, null when the prefix cannot be told. The listing may fail (prefix kept).
 */
export async function kernelEnv(
  sessionContext: ISessionContext | null | undefined,
  specs: KernelSpec.ISpecModels | null | undefined,
  environments: () => Promise<ReadonlyArray<IEnvironment>>
): Promise<string | null> {
  const [prefix, envs] = await Promise.all([
    kernelPrefix(sessionContext, specs),
    environments().catch((): IEnvironment[] => [])
  ]);
  return prefix ? envForPrefix(prefix, envs) : null;
}

export async function kernelPrefix(
  sessionContext: ISessionContext | null | undefined,
  specs: KernelSpec.ISpecModels | null | undefined
): Promise<string | null> {
  const kernel = sessionContext?.session?.kernel;
  if (kernel) {
    try {
      const future = kernel.requestExecute(
        {
          code: '',
          silent: true,
          store_history: false,
          user_expressions: { prefix: "__import__('sys').prefix" }
        },
        true
      );
      const reply = await Promise.race([
        future.done,
        new Promise<null>(resolve => window.setTimeout(() => resolve(null), 5000))
      ]);
      const content = reply?.content as
        | { status: string; user_expressions?: Record<string, { status: string; data?: Record<string, string> }> }
        | undefined;
      const expr = content?.user_expressions?.prefix;
      if (content?.status === 'ok' && expr?.status === 'ok' && expr.data?.['text/plain']) {
        const prefix = parsePythonString(expr.data['text/plain']);
        if (prefix) {
          return prefix;
        }
      }
    } catch {
      // fall back to the kernelspec
    }
  }
  const name = kernel?.name ?? sessionContext?.kernelPreference.name;
  const spec = name ? specs?.kernelspecs[name] : undefined;
  return prefixFromArgv(spec?.argv);
}
