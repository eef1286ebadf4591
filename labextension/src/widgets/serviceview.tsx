/** The service view: one main-area tab per service, owning its log follower. */
import type { TranslationBundle } from '@jupyterlab/translation';
import { ReactWidget } from '@jupyterlab/ui-components';
import type { CommandRegistry } from '@lumino/commands';
import React from 'react';

import type { CondaSvcAPI } from '../api';
import { ServiceDetails } from '../components/ServiceDetails';
import { downloadBlob } from '../download';
import { LogFollower } from '../logs';
import type { IServicesModel } from '../tokens';

export interface IServiceViewOptions {
  name: string;
  model: IServicesModel;
  api: CondaSvcAPI;
  commands: CommandRegistry;
  trans: TranslationBundle;
  initialLines: number;
  wrapLogs: boolean;
}

export class ServiceView extends ReactWidget {
  constructor(private readonly _options: IServiceViewOptions) {
    super();
    this.addClass('jp-condasvc-view');
    this.follower = new LogFollower({ source: _options.api, name: _options.name, initialLines: _options.initialLines });
    void this.follower.load();
  }

  readonly follower: LogFollower;

  get name(): string {
    return this._options.name;
  }

  dispose(): void {
    this.follower.dispose();
    super.dispose();
  }

  private _download = async (format: 'text' | 'json') => {
    const { api, name } = this._options;
    const filters = this.follower.filters;
    const blob = await api.logsDownload(name, {
      n: 10000,
      format,
      priority: filters.priority || undefined,
      since: filters.since || undefined
    });
    downloadBlob(`${name}.${format === 'text' ? 'log' : 'json'}`, blob);
  };

  render(): JSX.Element {
    const o = this._options;
    return (
      <ServiceDetails
        name={o.name}
        model={o.model}
        api={o.api}
        commands={o.commands}
        trans={o.trans}
        follower={this.follower}
        wrapLogs={o.wrapLogs}
        download={format => void this._download(format)}
      />
    );
  }
}
