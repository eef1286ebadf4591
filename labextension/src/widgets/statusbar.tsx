/** The status bar item: "3 running · 1 failed"; a click opens the sidebar. */
import type { TranslationBundle } from '@jupyterlab/translation';
import { ReactWidget } from '@jupyterlab/ui-components';
import React from 'react';

import { useSignal } from '../components/common';
import { servicesIcon } from '../icons';
import type { IServicesModel } from '../tokens';

function StatusText(props: { model: IServicesModel; trans: TranslationBundle; onClick: () => void }): JSX.Element {
  const { model, trans } = props;
  useSignal(model.changed);
  const counts = model.counts();
  const parts = [trans.__('%1 running', counts.running + counts.starting)];
  if (counts.failed) {
    parts.push(trans.__('%1 failed', counts.failed));
  }
  const unreachable = model.managerReachable === false;
  return (
    <button
      className={`jp-condasvc-status-item${counts.failed || unreachable ? ' jp-mod-failed' : ''}`}
      title={trans.__('Services (click to show the list)')}
      onClick={props.onClick}
    >
      <servicesIcon.react tag="span" className="jp-condasvc-status-icon" />
      <span>{unreachable ? trans.__('services: no user manager') : parts.join(' · ')}</span>
    </button>
  );
}

export class ServicesStatus extends ReactWidget {
  constructor(private readonly _options: { model: IServicesModel; trans: TranslationBundle; onClick: () => void }) {
    super();
    this.addClass('jp-condasvc-status');
  }

  render(): JSX.Element {
    return <StatusText {...this._options} />;
  }
}
