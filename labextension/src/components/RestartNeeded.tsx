/** "Restart needed": the service was edited after its process started (it runs the old version). */
import type { TranslationBundle } from '@jupyterlab/translation';
import type { CommandRegistry } from '@lumino/commands';
import React from 'react';

import { restartNeeded } from '../listview';
import { hostOf } from '../hosts';
import { CommandIDs, IService } from '../tokens';

export function RestartNeeded(props: {
  service: IService;
  commands: CommandRegistry;
  trans: TranslationBundle;
}): JSX.Element | null {
  const { service, commands, trans } = props;
  if (!restartNeeded(service)) {
    return null;
  }
  return (
    <div className="jp-condasvc-banner jp-condasvc-banner-warn jp-condasvc-restart-banner" role="status">
      {trans.__(
        'Edited after it started: the process still runs the old command line, variables or limits. What is shown is what the next start runs.'
      )}{' '}
      <button
        className="jp-mod-styled jp-mod-accept"
        onClick={() => void commands.execute(CommandIDs.restartService, { name: service.name, host: hostOf(service) })}
      >
        {trans.__('Restart now')}
      </button>
    </div>
  );
}
