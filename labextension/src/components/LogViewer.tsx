/**
 * The log viewer: a windowed list (only the visible rows are in the DOM, so
 * 100 000 lines stay smooth), follow on/off, jump to end, priority and time
 * filters, search with highlighting, ANSI colours, wrapping, gap markers and
 * downloads.
 */
import type { TranslationBundle } from '@jupyterlab/translation';
import React, { useCallback, useEffect, useLayoutEffect, useMemo, useRef, useState } from 'react';

import { parseAnsi, stripAnsi } from '../ansi';
import { findMatches, ILogRow, LogFollower } from '../logs';
import { RowLayout } from '../rowlayout';

const LINE_HEIGHT = 18;
const ANSI_NAMES = ['black', 'red', 'green', 'yellow', 'blue', 'magenta', 'cyan', 'white'];

function ansiClass(kind: 'fg' | 'bg', n: number | undefined): string {
  if (n === undefined) {
    return '';
  }
  const name = ANSI_NAMES[n % 8];
  return n >= 8 ? `ansi-${name}-intense-${kind}` : `ansi-${name}-${kind}`;
}

function stamp(row: ILogRow): string {
  const d = new Date(row.realtime_usec / 1000);
  const pad = (n: number, w = 2) => String(n).padStart(w, '0');
  return `${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}

const STAMP_CHARS = 19; // "MM-DD HH:MM:SS.mmm "

/** Highlight `needle` inside plain text. */
function highlight(text: string, needle: string, key: string): React.ReactNode[] {
  if (!needle) {
    return [text];
  }
  const sensitive = needle !== needle.toLowerCase();
  const hay = sensitive ? text : text.toLowerCase();
  const n = sensitive ? needle : needle.toLowerCase();
  const out: React.ReactNode[] = [];
  let from = 0;
  for (let i = hay.indexOf(n); i >= 0; i = hay.indexOf(n, i + n.length)) {
    if (i > from) {
      out.push(text.slice(from, i));
    }
    out.push(
      <mark key={`${key}-${i}`} className="jp-condasvc-mark">
        {text.slice(i, i + n.length)}
      </mark>
    );
    from = i + n.length;
  }
  if (from < text.length) {
    out.push(text.slice(from));
  }
  return out;
}

function LogLine(props: {
  row: ILogRow;
  needle: string;
  current: boolean;
  top: number;
  height: number;
  trans: TranslationBundle;
}): JSX.Element {
  const { row, needle, trans } = props;
  const cls = ['jp-condasvc-logline'];
  if (row.priority !== null && row.priority <= 3) {
    cls.push('jp-condasvc-prio-err');
  } else if (row.priority === 4) {
    cls.push('jp-condasvc-prio-warn');
  } else if (row.priority === 7) {
    cls.push('jp-condasvc-prio-debug');
  }
  if (row.source === 'manager') {
    cls.push('jp-condasvc-source-manager');
  }
  if (row.untrusted) {
    cls.push('jp-condasvc-untrusted');
  }
  if (props.current) {
    cls.push('jp-condasvc-current');
  }
  let body: React.ReactNode;
  if (row.dropped !== undefined || row.marker) {
    cls.push('jp-condasvc-gap');
    const count = row.dropped ?? row.marker?.count ?? 0;
    body = (
      <span className="jp-condasvc-gap-text" title={row.message}>
        {row.dropped !== undefined
          ? trans._n(
              '⋯ %1 line not shown here (the viewer fell behind) ⋯',
              '⋯ %1 lines not shown here (the viewer fell behind) ⋯',
              count
            )
          : trans._n('⋯ journald dropped %1 line (rate limit) ⋯', '⋯ journald dropped %1 lines (rate limit) ⋯', count)}
      </span>
    );
  } else {
    body = parseAnsi(row.message).map((seg, i) => {
      const classes = [
        ansiClass('fg', seg.fg),
        ansiClass('bg', seg.bg),
        seg.bold ? 'jp-condasvc-bold' : '',
        seg.italic ? 'jp-condasvc-italic' : '',
        seg.underline ? 'jp-condasvc-underline' : ''
      ]
        .filter(Boolean)
        .join(' ');
      const content = highlight(seg.text, needle, String(i));
      return classes ? (
        <span key={i} className={classes}>
          {content}
        </span>
      ) : (
        <React.Fragment key={i}>{content}</React.Fragment>
      );
    });
    if (row.omitted) {
      body = (
        <>
          {body}
          <span className="jp-condasvc-omitted">
            {trans._n(
              ' … %1 more character (download the log for all)',
              ' … %1 more characters (download the log for all)',
              row.omitted
            )}
          </span>
        </>
      );
    }
    if (row.untrusted) {
      const origin = row.origin || trans.__('another process');
      body = (
        <>
          <span
            className="jp-condasvc-origin"
            title={trans.__(
              'Written about this service by %1, not by the service or systemd: it may be spoofed.',
              origin
            )}
          >
            {`⚠ ${origin}: `}
          </span>
          {body}
        </>
      );
    }
  }
  return (
    <div className={cls.join(' ')} style={{ top: props.top, height: props.height }} data-cursor={row.cursor}>
      <span className="jp-condasvc-stamp" title={row.realtime}>
        {stamp(row)}{' '}
      </span>
      {body}
    </div>
  );
}

export interface ILogViewerProps {
  follower: LogFollower;
  trans: TranslationBundle;
  defaultWrap: boolean;
  download: (format: 'text' | 'json') => void;
}

export function LogViewer(props: ILogViewerProps): JSX.Element {
  const { follower, trans } = props;
  // Coalesce bursts of pushed lines into one render per frame.
  const [, setFrame] = useState(0);
  useEffect(() => {
    let pending = 0;
    const slot = () => {
      if (!pending) {
        pending = window.requestAnimationFrame(() => {
          pending = 0;
          setFrame(f => f + 1);
        });
      }
    };
    follower.changed.connect(slot);
    return () => {
      follower.changed.disconnect(slot);
      if (pending) {
        window.cancelAnimationFrame(pending);
      }
    };
  }, [follower]);
  const rows = follower.buffer.rows;
  const version = follower.buffer.version;
  const [wrap, setWrap] = useState(props.defaultWrap);
  const [search, setSearch] = useState('');
  const [current, setCurrent] = useState(-1);
  const [stuck, setStuck] = useState(true);
  const [viewport, setViewport] = useState({ top: 0, height: 400, width: 800 });
  const [charWidth, setCharWidth] = useState(7.8);
  const scroller = useRef<HTMLDivElement>(null);
  const measure = useRef<HTMLSpanElement>(null);

  useLayoutEffect(() => {
    const el = scroller.current;
    if (!el) {
      return;
    }
    const update = () => {
      setViewport({ top: el.scrollTop, height: el.clientHeight, width: el.clientWidth });
      if (measure.current) {
        const w = measure.current.getBoundingClientRect().width / 100;
        if (w > 0) {
          setCharWidth(w);
        }
      }
    };
    update();
    const observer = new ResizeObserver(update);
    observer.observe(el);
    return () => observer.disconnect();
  }, []);

  const layout = useMemo(() => {
    if (!wrap) {
      return new RowLayout(new Float64Array(rows.length).fill(LINE_HEIGHT));
    }
    const cols = Math.max(20, Math.floor((viewport.width - 16) / charWidth));
    const heights = new Float64Array(rows.length);
    for (let i = 0; i < rows.length; i++) {
      const row = rows[i];
      const len =
        STAMP_CHARS + (row.plain ?? stripAnsi(row.message)).length + (row.omitted ? 48 : 0) + (row.untrusted ? 24 : 0);
      heights[i] = Math.max(1, Math.ceil(len / cols)) * LINE_HEIGHT;
    }
    return new RowLayout(heights);
  }, [version, rows, wrap, wrap ? viewport.width : 0, charWidth]);

  const matches = useMemo(() => findMatches(rows, search), [version, rows, search]);

  // Keep the view at the end while following and stuck to the bottom.
  useLayoutEffect(() => {
    const el = scroller.current;
    if (el && stuck) {
      el.scrollTop = el.scrollHeight;
      setViewport(v => (v.top === el.scrollTop ? v : { ...v, top: el.scrollTop }));
    }
  }, [layout.total, stuck]);

  const onScroll = useCallback(() => {
    const el = scroller.current;
    if (!el) {
      return;
    }
    setViewport(v => ({ ...v, top: el.scrollTop, height: el.clientHeight }));
    const atEnd = el.scrollHeight - el.scrollTop - el.clientHeight < LINE_HEIGHT * 2;
    setStuck(atEnd);
  }, []);

  const goTo = (index: number) => {
    const el = scroller.current;
    if (!el || index < 0 || index >= layout.count) {
      return;
    }
    setStuck(false);
    el.scrollTop = Math.max(0, layout.offsets[index] - el.clientHeight / 2);
    setViewport(v => ({ ...v, top: el.scrollTop }));
  };

  const step = (dir: 1 | -1) => {
    if (!matches.length) {
      return;
    }
    const pos = matches.indexOf(current);
    let next: number;
    if (pos < 0) {
      const visible = layout.indexAt(viewport.top);
      next =
        dir > 0
          ? (matches.find(m => m >= visible) ?? matches[0])
          : ([...matches].reverse().find(m => m <= visible) ?? matches[matches.length - 1]);
    } else {
      next = matches[(pos + dir + matches.length) % matches.length];
    }
    setCurrent(next);
    goTo(next);
  };

  const jumpToEnd = () => {
    const el = scroller.current;
    setStuck(true);
    if (el) {
      el.scrollTop = el.scrollHeight;
    }
  };

  const [first, last] = layout.range(viewport.top, viewport.height);
  const visible: JSX.Element[] = [];
  for (let i = first; i < last; i++) {
    visible.push(
      <LogLine
        key={rows[i].cursor}
        row={rows[i]}
        needle={search}
        current={i === current}
        top={layout.offsets[i]}
        height={layout.offsets[i + 1] - layout.offsets[i]}
        trans={trans}
      />
    );
  }

  const followState = follower.followState;
  // Following, but the view is parked (on a search match, or scrolled up): new lines are not in view.
  const shownState = followState === 'live' && follower.following && !stuck ? 'parked' : followState;
  const matchPos = matches.indexOf(current);
  return (
    <div className="jp-condasvc-logs">
      <div className="jp-condasvc-logs-toolbar" role="toolbar" aria-label={trans.__('Log tools')}>
        <label className="jp-condasvc-check" title={trans.__('Show new lines as they are written')}>
          <input
            type="checkbox"
            name="follow"
            checked={follower.following}
            onChange={ev => {
              follower.setFollow(ev.target.checked);
              if (ev.target.checked) {
                jumpToEnd();
              }
            }}
          />
          {trans.__('Follow')}
        </label>
        <span className={`jp-condasvc-follow-state jp-condasvc-follow-${shownState}`} data-state={shownState}>
          {shownState === 'parked'
            ? trans.__('paused here: new lines arrive below (Jump to end)')
            : followState === 'live'
              ? trans.__('live')
              : followState === 'reconnecting'
                ? trans.__('reconnecting…')
                : followState === 'connecting'
                  ? trans.__('connecting…')
                  : trans.__('paused')}
        </span>
        <button className="jp-mod-styled" onClick={jumpToEnd} disabled={stuck}>
          {trans.__('Jump to end')}
        </button>
        <select
          className="jp-mod-styled"
          aria-label={trans.__('Priority')}
          value={follower.filters.priority}
          onChange={ev => follower.setFilters({ priority: ev.target.value })}
        >
          <option value="">{trans.__('all priorities')}</option>
          <option value="3">{trans.__('errors')}</option>
          <option value="4">{trans.__('warnings and worse')}</option>
          <option value="5">{trans.__('notices and worse')}</option>
          <option value="6">{trans.__('info and worse')}</option>
        </select>
        <select
          className="jp-mod-styled"
          aria-label={trans.__('Since')}
          value={follower.filters.since}
          onChange={ev => follower.setFilters({ since: ev.target.value })}
        >
          <option value="">{trans.__('any time')}</option>
          <option value="-5m">{trans.__('last 5 minutes')}</option>
          <option value="-1h">{trans.__('last hour')}</option>
          <option value="-1d">{trans.__('last day')}</option>
          <option value="-7d">{trans.__('last week')}</option>
        </select>
        <input
          className="jp-mod-styled jp-condasvc-search"
          type="search"
          aria-label={trans.__('Search the log')}
          placeholder={trans.__('Search')}
          value={search}
          onChange={ev => {
            setSearch(ev.target.value);
            setCurrent(-1);
          }}
          onKeyDown={ev => {
            if (ev.key === 'Enter') {
              ev.preventDefault();
              step(ev.shiftKey ? -1 : 1);
            }
          }}
        />
        {search ? (
          <span className="jp-condasvc-matches">
            {matches.length
              ? matchPos >= 0
                ? `${matchPos + 1}/${matches.length}`
                : trans._n('%1 match', '%1 matches', matches.length)
              : trans.__('no match')}
          </span>
        ) : null}
        <button
          className="jp-mod-styled"
          aria-label={trans.__('Previous match')}
          onClick={() => step(-1)}
          disabled={!matches.length}
        >
          ↑
        </button>
        <button
          className="jp-mod-styled"
          aria-label={trans.__('Next match')}
          onClick={() => step(1)}
          disabled={!matches.length}
        >
          ↓
        </button>
        <label className="jp-condasvc-check">
          <input type="checkbox" name="wrap" checked={wrap} onChange={ev => setWrap(ev.target.checked)} />
          {trans.__('Wrap')}
        </label>
        <span className="jp-condasvc-download">
          {trans.__('Download')}
          <button
            className="jp-mod-styled"
            title={trans.__('Download as text, like journalctl')}
            onClick={() => props.download('text')}
          >
            .log
          </button>
          <button
            className="jp-mod-styled"
            title={trans.__('Download as JSON entries')}
            onClick={() => props.download('json')}
          >
            .json
          </button>
        </span>
      </div>
      {follower.error ? (
        <div className="jp-condasvc-banner jp-condasvc-banner-error" role="alert">
          {follower.error}
        </div>
      ) : null}
      {follower.journal && !follower.journal.ok && rows.length === 0 ? (
        // Lines arriving prove the journal readable: the banner goes with the first one.
        <div className="jp-condasvc-banner jp-condasvc-banner-warn" role="status">
          <div>{follower.journal.message}</div>
          {follower.journal.fix ? <div className="jp-condasvc-fix">{follower.journal.fix}</div> : null}
        </div>
      ) : null}
      <div className="jp-condasvc-logs-meta">
        {follower.moreBefore ? (
          <button className="jp-condasvc-link" onClick={() => void follower.loadOlder()} disabled={follower.loading}>
            {trans.__('Load older lines')}
          </button>
        ) : null}
        <span>{follower.loading ? trans.__('Loading…') : trans._n('%1 line', '%1 lines', rows.length)}</span>
      </div>
      <div
        className={`jp-condasvc-logs-scroller${wrap ? ' jp-mod-wrap' : ''}`}
        ref={scroller}
        onScroll={onScroll}
        tabIndex={0}
        role="log"
        aria-label={trans.__('Log lines')}
        aria-live="off"
      >
        <span ref={measure} className="jp-condasvc-measure" aria-hidden="true">
          {'M'.repeat(100)}
        </span>
        <div className="jp-condasvc-logs-inner" style={{ height: layout.total }}>
          {visible}
        </div>
        {!rows.length && !follower.loading ? (
          <div className="jp-condasvc-logs-empty">{trans.__('No log lines yet.')}</div>
        ) : null}
      </div>
    </div>
  );
}
