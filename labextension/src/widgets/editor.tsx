/** The create / edit form as a main-area widget. */
import type { TranslationBundle } from '@jupyterlab/translation';
import { ReactWidget } from '@jupyterlab/ui-components';
import React from 'react';

import type { CondaSvcAPI } from '../api';
import { ServiceForm } from '../components/ServiceForm';
import type { IService, IServiceSpec, Kind } from '../tokens';

export interface IServiceEditorOptions {
  api: CondaSvcAPI;
  trans: TranslationBundle;
  initial: Partial<IServiceSpec>;
  editing?: string;
  listFiles: (dir: string) => Promise<string[]>;
  browse: (kind: Kind) => Promise<string | null>;
  onDone: (service: IService) => void;
}

export class ServiceEditor extends ReactWidget {
  constructor(private readonly _options: IServiceEditorOptions) {
    super();
    this.addClass('jp-condasvc-editor');
  }

  render(): JSX.Element {
    return <ServiceForm {...this._options} onCancel={() => this.parent?.close() ?? this.close()} />;
  }
}
