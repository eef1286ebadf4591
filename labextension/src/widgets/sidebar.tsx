/** The left-panel widget holding the service list. */
import type { TranslationBundle } from '@jupyterlab/translation';
import { ReactWidget } from '@jupyterlab/ui-components';
import type { CommandRegistry } from '@lumino/commands';
import React from 'react';

import { ServiceList } from '../components/ServiceList';
import { servicesIcon } from '../icons';
import type { IServicesModel } from '../tokens';

export class ServicesPanel extends ReactWidget {
  constructor(
    private readonly _options: { model: IServicesModel; commands: CommandRegistry; trans: TranslationBundle }
  ) {
    super();
    this.id = 'jp-condasvc-panel';
    this.addClass('jp-condasvc-sidebar');
    this.title.icon = servicesIcon;
    this.title.caption = _options.trans.__('Services');
  }

  render(): JSX.Element {
    return <ServiceList {...this._options} />;
  }
}
