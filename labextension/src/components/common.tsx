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
  return (
    <span className={`jp-condasvc-state jp-condasvc-state-${state}`} data-state={state}>
      <span className="jp-condasvc-dot" aria-hidden="true" />
      {stateLabel(state, props.trans)}
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
