/** Export and import of a spec as YAML: what is exported imports back to the same spec. */
import { specFromText, specToYaml } from '../specfile';
import type { IServiceSpec } from '../tokens';

const SPEC = {
  name: 'web',
  kind: 'script',
  env: 'base',
  path: 'app.py',
  args: ['--greeting', 'hi there', "it's"],
  environment: { MODE: 'prod', TOKEN: null, EMPTY: '' },
  secrets: ['TOKEN'],
  parameters: {},
  schedule: null,
  restart: 'on-failure',
  enabled: true,
  memory_max: '1G',
  health_check: { type: 'http', url: 'http://127.0.0.1:8000/health', interval_sec: 10 }
} as unknown as IServiceSpec;

describe('specfile', () => {
  it('round-trips, dropping unset fields and leaving secret values empty', () => {
    const text = specToYaml(SPEC);
    expect(text).toMatch(/^# The service web/);
    expect(text).toContain('fill in TOKEN');
    const back = specFromText(text);
    expect(back).toEqual({
      name: 'web',
      kind: 'script',
      env: 'base',
      path: 'app.py',
      args: ['--greeting', 'hi there', "it's"],
      environment: { MODE: 'prod', TOKEN: '', EMPTY: '' },
      secrets: ['TOKEN'],
      restart: 'on-failure',
      enabled: true,
      memory_max: '1G',
      health_check: { type: 'http', url: 'http://127.0.0.1:8000/health', interval_sec: 10 }
    });
  });

  it('keeps strings that look like other types as strings', () => {
    const spec = {
      name: 'x',
      kind: 'command',
      env: 'base',
      command: 'yes',
      args: ['true', '1', 'null', '- a', '#b', 'a: b']
    };
    expect(specFromText(specToYaml(spec as unknown as IServiceSpec))).toEqual(spec);
  });

  it('reads JSON too', () => {
    expect(specFromText('{"name": "a", "kind": "script"}')).toEqual({ name: 'a', kind: 'script' });
  });

  it('says what is wrong with a bad file', () => {
    expect(() => specFromText('name: [unclosed', 'x.yaml')).toThrow(/^x.yaml is not valid YAML or JSON/);
    expect(() => specFromText('- a\n- b', 'x.yaml')).toThrow(/must hold a mapping/);
    expect(() => specFromText('just text', 'x.yaml')).toThrow(/must hold a mapping/);
  });
});
