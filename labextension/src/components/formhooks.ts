/** The service form's effects that talk to the server: the live unit preview and path completion. */
import { useEffect, useRef, useState } from 'react';

import type { CondaSvcAPI, CondaSvcError } from '../api';
import type { IPreview, IServiceSpec, Kind } from '../tokens';

export interface IPreviewState {
  /** The last unit the server rendered (kept while the form has an error, shown as out of date). */
  preview: IPreview | null;
  /** The server's answer to the last spec, when it refused it; `field` as the server names it. */
  error: { field: string | null; message: string } | null;
}

/** POST preview for a spec (debounced 400 ms); only the answer to the latest spec counts. */
export function usePreview(api: CondaSvcAPI, spec: IServiceSpec | null): IPreviewState {
  const [state, setState] = useState<IPreviewState>({ preview: null, error: null });
  const seq = useRef(0);
  useEffect(() => {
    if (!spec || !spec.name || !spec.env) {
      return;
    }
    const mine = ++seq.current;
    const handle = window.setTimeout(() => {
      api
        .preview(spec)
        .then(preview => {
          if (mine === seq.current) {
            setState({ preview, error: null });
          }
        })
        .catch(e => {
          if (mine === seq.current) {
            const err = e as CondaSvcError;
            setState(s => ({ preview: s.preview, error: { field: err.field ?? null, message: err.message } }));
          }
        });
    }, 400);
    return () => window.clearTimeout(handle);
  }, [spec, api]);
  return state;
}

/** Files and folders next to `path` that fit the kind (notebooks or scripts), for a datalist. */
export function usePathSuggestions(listFiles: (dir: string) => Promise<string[]>, path: string, kind: Kind): string[] {
  const [suggestions, setSuggestions] = useState<string[]>([]);
  useEffect(() => {
    if (kind === 'command') {
      return;
    }
    const dir = path.includes('/') ? path.slice(0, path.lastIndexOf('/')) : '';
    let cancelled = false;
    const handle = window.setTimeout(() => {
      listFiles(dir)
        .then(files => {
          if (!cancelled) {
            const suffix = kind === 'notebook' ? '.ipynb' : '.py';
            setSuggestions(files.filter(f => f.endsWith('/') || f.endsWith(suffix)));
          }
        })
        .catch(() => undefined);
    }, 150);
    return () => {
      cancelled = true;
      window.clearTimeout(handle);
    };
  }, [path, kind]);
  return suggestions;
}
