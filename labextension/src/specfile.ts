/**
 * A service's spec as a YAML file (pure): what "Export spec…" downloads and "Import spec…" reads,
 * the same file `jupyter condasvc create -f NAME.yaml` takes. JSON is YAML, so either imports.
 */
import { parse, stringify } from 'yaml';

import type { IServiceSpec } from './tokens';

/** The file's text: set fields only; secret values left empty (the API never returns them). */
export function specToYaml(spec: IServiceSpec): string {
  const secrets = new Set(spec.secrets ?? []);
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(spec)) {
    if (value === null || value === undefined || (Array.isArray(value) && !value.length)) {
      continue;
    }
    if (typeof value === 'object' && !Array.isArray(value) && !Object.keys(value).length) {
      continue;
    }
    out[key] = value;
  }
  if (spec.environment) {
    const environment: Record<string, string> = {};
    for (const [key, value] of Object.entries(spec.environment)) {
      environment[key] = secrets.has(key) ? '' : (value ?? '');
    }
    out.environment = environment;
  }
  const header = [
    `# The service ${spec.name} (jupyter_condasvc). Create it again with:`,
    `#   jupyter condasvc create -f ${spec.name}.yaml   (or Import spec… in JupyterLab)`
  ];
  if (secrets.size) {
    header.push(`# Secret values are not exported: fill in ${[...secrets].join(', ')} before creating.`);
  }
  return `${header.join('\n')}\n${stringify(out, { lineWidth: 0 })}`;
}

/** A spec read from a YAML or JSON file, or an Error that says what is wrong with it. */
export function specFromText(text: string, fileName = 'the file'): Partial<IServiceSpec> {
  let data: unknown;
  try {
    data = parse(text);
  } catch (e) {
    throw new Error(`${fileName} is not valid YAML or JSON: ${String((e as Error).message).split('\n')[0]}`);
  }
  if (data === null || typeof data !== 'object' || Array.isArray(data)) {
    throw new Error(`${fileName} must hold a mapping of fields (name, kind, env, ...).`);
  }
  return data as Partial<IServiceSpec>;
}
