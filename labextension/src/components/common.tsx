/** Shared presentational bits: the state badge, a hook for Lumino signals, a clock. */
import type { TranslationBundle } from '@jupyterlab/translation';
import type { ISignal } from '@lumino/signaling';
import React, { useEffect, useState } from 'react';

import type { DisplayState, IService } from '../tokens';
import { displayState } from '../model';

/** Re-render when a Lumino signal fires. */
export function useSignal<T>(signal: ISignal<T, unknown> | null | undefined): number {
  const [tick, setTick] = useState(0);
  useEffect(() => {
    if (!signal) {
      return;
    }
    const slot = () => setTick(t => t + 1);
    signal.connect(slot);
    return () => {
      signal.disconnect(slot);
    };
  }, [signal]);
  return tick;
}

/** The current time, refreshed every `ms` (display only: uptimes and countdowns). */
export function useNow(ms = 1000): number {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const handle = window.setInterval(() => setNow(Date.now()), ms);
    return () => window.clearInterval(handle);
  }, [ms]);
  return now;
}

export function stateLabel(state: DisplayState, trans: TranslationBundle): string {
  switch (state) {
    case 'running':
      return trans.__('running');
    case 'starting':
      return trans.__('starting');
    case 'stopping':
      return trans.__('stopping');
    case 'stopped':
      return trans.__('stopped');
    case 'failed':
      return trans.__('failed');
    case 'scheduled':
      return trans.__('scheduled');
    default:
      return trans.__('unknown');
  }
}

export function StateBadge(props: { service: IService; trans: TranslationBundle }): JSX.Element {
  const state = displayState(props.service);
  const { trans } = props;
  const status = props.service.status;
  // Why it stopped, or that it is about to: shown wherever the state is (sidebar list and service tab).
  const trouble = status.start_limit_hit ? 'start-limit' : status.crash_looping ? 'crash-looping' : null;
  const title =
    trouble === 'start-limit'
      ? trans.__('It kept crashing and systemd stopped it at its start limit; fix the cause, then "Reset and start".')
      : trouble === 'crash-looping'
        ? trans.__('It keeps exiting and being restarted; the start limit will stop it unless it recovers.')
        : undefined;
  return (
    <span
      className={`jp-condasvc-state jp-condasvc-state-${state}${trouble ? ` jp-condasvc-trouble-${trouble}` : ''}`}
      data-state={state}
      data-trouble={trouble ?? undefined}
      title={title}
    >
      <span className="jp-condasvc-dot" aria-hidden="true" />
      {stateLabel(state, trans)}
      {trouble === 'start-limit'
        ? ` · ${trans.__('start limit hit')}`
        : trouble === 'crash-looping'
          ? ` · ${trans.__('crash-looping')}`
          : ''}
    </span>
  );
}

export function kindLabel(kind: string, trans: TranslationBundle): string {
  switch (kind) {
    case 'notebook':
      return trans.__('notebook');
    case 'script':
      return trans.__('script');
    case 'command':
      return trans.__('command');
    default:
      return kind;
  }
}
