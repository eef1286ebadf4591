/** The service view: one main-area tab per service, owning its log follower. */
import type { TranslationBundle } from '@jupyterlab/translation';
import { ReactWidget } from '@jupyterlab/ui-components';
import type { CommandRegistry } from '@lumino/commands';
import React from 'react';

import type { CondaSvcAPI } from '../api';
import { ServiceDetails } from '../components/ServiceDetails';
import { downloadBlob } from '../download';
import { LogFollower } from '../logs';
import { LOCAL_HOST } from '../tokens';
import type { IServicesModel } from '../tokens';

export interface IServiceViewOptions {
  name: string;
  /** The service's host (default local): its logs, runs and unit are read there. */
  host?: string;
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
    this._api = _options.api.at(_options.host);
    this.follower = new LogFollower({ source: this._api, name: _options.name, initialLines: _options.initialLines });
    void this.follower.load();
  }

  readonly follower: LogFollower;

  get name(): string {
    return this._options.name;
  }

  get host(): string {
    return this._options.host || LOCAL_HOST;
  }

  dispose(): void {
    this.follower.dispose();
    super.dispose();
  }

  private _download = async (format: 'text' | 'json') => {
    const { name } = this._options;
    const api = this._api;
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
        host={this.host}
        model={o.model}
        api={this._api}
        commands={o.commands}
        trans={o.trans}
        follower={this.follower}
        wrapLogs={o.wrapLogs}
        download={format => void this._download(format)}
      />
    );
  }

  /** The client of the service's host. */
  private _api: CondaSvcAPI;
}
