/** Small helpers of the service form (pure): defaults read from the preview, cron to calendar. */

/** The value of `Key=` in a rendered unit (the last one wins, like systemd), or null. */
export function unitValue(unit: string | null | undefined, key: string): string | null {
  if (!unit) {
    return null;
  }
  let found: string | null = null;
  for (const line of unit.split('\n')) {
    if (line.startsWith(key + '=')) {
      found = line.slice(key.length + 1);
    }
  }
  return found;
}

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'];
const CRON_FIELD = /^(\*|\d+(-\d+)?)(\/\d+)?(,(\*|\d+(-\d+)?)(\/\d+)?)*$/;

function field(value: string, pad: boolean, first = '0'): string {
  return value
    .split(',')
    .map(part => {
      const [range, step] = part.split('/');
      let out = range === '*' ? (step ? first : '*') : range.replace('-', '..');
      if (pad && /^\d$/.test(out)) {
        out = '0' + out;
      }
      return step ? `${out}/${step}` : out;
    })
    .join(',');
}

function days(value: string): string {
  if (value === '*') {
    return '';
  }
  return value
    .split(',')
    .map(part => {
      const [a, b] = part.split('-').map(n => DAYS[Number(n)] ?? n);
      return b ? `${a}..${b}` : a;
    })
    .join(',');
}

/**
 * A systemd calendar expression for a 5-field cron line ("*\/5 * * * *" →
 * "*-*-* *:00/5:00"), or null when the text is not cron. Steps, ranges and
 * lists are kept; day-of-week numbers become names.
 */
export function cronToCalendar(text: string): string | null {
  const parts = text.trim().split(/\s+/);
  if (parts.length !== 5 || !parts.every(p => CRON_FIELD.test(p))) {
    return null;
  }
  const [minute, hour, dom, month, dow] = parts;
  if (dow !== '*' && !dow.split(/[,-]/).every(n => /^[0-7]$/.test(n))) {
    return null;
  }
  const dayNames = days(dow);
  const date = `*-${field(month, true, '1')}-${field(dom, true, '1')}`;
  const time = `${field(hour, true)}:${field(minute, true)}:00`;
  return `${dayNames ? dayNames + ' ' : ''}${date} ${time}`;
}

/** Common schedules, as systemd writes them. */
export const SCHEDULE_PRESETS: Array<[string, string]> = [
  ['every 5 minutes', '*:0/5'],
  ['hourly', 'hourly'],
  ['daily at 02:00', '*-*-* 02:00:00'],
  ['weekdays at 09:00', 'Mon..Fri *-*-* 09:00:00'],
  ['weekly (Monday 00:00)', 'weekly'],
  ['monthly', 'monthly']
];
