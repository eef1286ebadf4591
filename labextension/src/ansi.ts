/**
 * Escape sequences in service output: what a log line may keep (colour and
 * bold SGR codes, capped in length) and its split into styled segments.
 * Pure functions, linear in the line's length.
 */

/**
 * What one line may cost the browser, whatever a service prints: the characters
 * kept and shown, and the styled pieces (one DOM node each) it may become.
 */
export const MAX_LINE_CHARS = 4096;
export const MAX_SEGMENTS = 64;

// eslint-disable-next-line no-control-regex
const STRING_ESCAPES = /(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])[\s\S]*?(?:\x07|\x1b\\|\x9c|$)/g;
// eslint-disable-next-line no-control-regex
const CSI_ANY = /(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]/g;
// eslint-disable-next-line no-control-regex
const KEPT_SGR = /^\x1b\[[0-9;]*m$/;
// eslint-disable-next-line no-control-regex
const OTHER_CONTROLS = /\x1b(?!\[[0-9;]*m)(?:[ -/]*[0-~])?|[\x00-\x08\x0b-\x1a\x1c-\x1f\x7f-\x9f]/g;
// eslint-disable-next-line no-control-regex
const PARTIAL_SGR = /\x1b(?:\[[0-9;]*)?$/;

/**
 * A message as the viewer may show it: OSC sequences (titles, hyperlinks) and
 * every other escape or control character removed, except colour/bold SGR
 * codes and tabs; at most MAX_LINE_CHARS characters kept.  Linear time.
 */
export function sanitizeLine(message: string): { text: string; omitted: number } {
  let text = message.length > 4 * MAX_LINE_CHARS ? message.slice(0, 4 * MAX_LINE_CHARS) : message;
  let omitted = message.length - text.length;
  text = text
    .replace(STRING_ESCAPES, '')
    .replace(CSI_ANY, seq => (KEPT_SGR.test(seq) ? seq : ''))
    .replace(OTHER_CONTROLS, '');
  if (text.length > MAX_LINE_CHARS) {
    omitted += text.length - MAX_LINE_CHARS;
    text = text.slice(0, MAX_LINE_CHARS).replace(PARTIAL_SGR, '');
  }
  return { text, omitted };
}

/** A segment of a log line with its ANSI SGR style. */
export interface IAnsiSegment {
  text: string;
  fg?: number;
  bg?: number;
  bold?: boolean;
  italic?: boolean;
  underline?: boolean;
}

// eslint-disable-next-line no-control-regex
const SGR = /\x1b\[([0-9;]*)m/g;
// eslint-disable-next-line no-control-regex
const OTHER_ESCAPES = /\x1b\[[0-9;?]*[A-Za-ln-z]/g;

function sameStyle(a: Omit<IAnsiSegment, 'text'>, b: Omit<IAnsiSegment, 'text'>): boolean {
  return (
    a.fg === b.fg && a.bg === b.bg && !a.bold === !b.bold && !a.italic === !b.italic && !a.underline === !b.underline
  );
}

/**
 * Split a line into segments by ANSI SGR codes (colours 0-15; other escapes dropped).
 * Adjacent segments of the same style are merged, and a line becomes at most
 * MAX_SEGMENTS segments: past that, the rest keeps the last style.
 */
export function parseAnsi(line: string): IAnsiSegment[] {
  const text = line.replace(OTHER_ESCAPES, '');
  const segments: IAnsiSegment[] = [];
  let style: Omit<IAnsiSegment, 'text'> = {};
  let last = 0;
  const push = (piece: string) => {
    const prev = segments[segments.length - 1];
    if (prev && (segments.length >= MAX_SEGMENTS || sameStyle(prev, style))) {
      prev.text += piece;
    } else {
      segments.push({ text: piece, ...style });
    }
  };
  SGR.lastIndex = 0;
  for (let m = SGR.exec(text); m; m = SGR.exec(text)) {
    if (m.index > last) {
      push(text.slice(last, m.index));
    }
    last = m.index + m[0].length;
    const codes = m[1] === '' ? [0] : m[1].split(';').map(Number);
    for (let i = 0; i < codes.length; i++) {
      const c = codes[i];
      if (c === 0) {
        style = {};
      } else if (c === 1) {
        style = { ...style, bold: true };
      } else if (c === 3) {
        style = { ...style, italic: true };
      } else if (c === 4) {
        style = { ...style, underline: true };
      } else if (c === 22) {
        style = { ...style, bold: false };
      } else if (c >= 30 && c <= 37) {
        style = { ...style, fg: c - 30 };
      } else if (c >= 90 && c <= 97) {
        style = { ...style, fg: c - 90 + 8 };
      } else if (c === 39) {
        style = { ...style, fg: undefined };
      } else if (c >= 40 && c <= 47) {
        style = { ...style, bg: c - 40 };
      } else if (c >= 100 && c <= 107) {
        style = { ...style, bg: c - 100 + 8 };
      } else if (c === 49) {
        style = { ...style, bg: undefined };
      } else if ((c === 38 || c === 48) && codes[i + 1] === 5) {
        const n = codes[i + 2];
        if (n !== undefined && n < 16) {
          style = c === 38 ? { ...style, fg: n } : { ...style, bg: n };
        }
        i += 2;
      } else if ((c === 38 || c === 48) && codes[i + 1] === 2) {
        i += 4;
      }
    }
  }
  if (last < text.length) {
    push(text.slice(last));
  }
  return segments;
}

/** Strip ANSI escapes (for search and measuring). */
export function stripAnsi(line: string): string {
  return line.replace(SGR, '').replace(OTHER_ESCAPES, '');
}
