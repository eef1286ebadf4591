/** Small formatting helpers shared by the components (pure). */

export function formatBytes(bytes: number | null | undefined): string {
  if (bytes === null || bytes === undefined) {
    return '—';
  }
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let i = 0;
  while (value >= 1024 && i < units.length - 1) {
    value /= 1024;
    i++;
  }
  return `${value < 10 && i > 0 ? value.toFixed(1) : Math.round(value)} ${units[i]}`;
}

/** A duration in seconds as "3d 4h", "5m 12s", "42s". */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  if (d) {
    return `${d}d ${h}h`;
  }
  if (h) {
    return `${h}h ${m}m`;
  }
  if (m) {
    return `${m}m ${sec}s`;
  }
  return `${sec}s`;
}

export function secondsSince(iso: string | null | undefined, now = Date.now()): number | null {
  if (!iso) {
    return null;
  }
  const t = Date.parse(iso);
  return Number.isNaN(t) ? null : (now - t) / 1000;
}

export function formatTime(iso: string | null | undefined): string {
  if (!iso) {
    return '—';
  }
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString();
}

/** CPU time in nanoseconds as seconds. */
export function formatCpu(nsec: number | null | undefined): string {
  if (nsec === null || nsec === undefined) {
    return '—';
  }
  const s = nsec / 1e9;
  return s < 60 ? `${s.toFixed(2)} s` : formatDuration(s);
}

/** "in 5m" / "3m ago" for a timestamp. */
export function relativeTime(iso: string | null | undefined, now = Date.now()): string {
  const ago = secondsSince(iso, now);
  if (ago === null) {
    return '';
  }
  return ago < 0 ? `in ${formatDuration(-ago)}` : `${formatDuration(ago)} ago`;
}

/** Split a command line like a POSIX shell would (quotes and backslashes; no expansion). */
export function splitArgs(line: string): string[] {
  const out: string[] = [];
  let current = '';
  let inWord = false;
  let quote: '"' | "'" | null = null;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quote) {
      if (c === quote) {
        quote = null;
      } else if (c === '\\' && quote === '"' && i + 1 < line.length && '"\\$`'.includes(line[i + 1])) {
        current += line[++i];
      } else {
        current += c;
      }
    } else if (c === '"' || c === "'") {
      quote = c;
      inWord = true;
    } else if (c === '\\' && i + 1 < line.length) {
      current += line[++i];
      inWord = true;
    } else if (/\s/.test(c)) {
      if (inWord) {
        out.push(current);
        current = '';
        inWord = false;
      }
    } else {
      current += c;
      inWord = true;
    }
  }
  if (inWord) {
    out.push(current);
  }
  return out;
}

/** The inverse of splitArgs: quote what needs it. */
export function joinArgs(args: ReadonlyArray<string>): string {
  return args
    .map(a => (a !== '' && /^[A-Za-z0-9_@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'"'"'`)}'`))
    .join(' ');
}
