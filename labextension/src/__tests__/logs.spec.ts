/** What hostile service output may cost the log viewer (issue 16, finding 5). */
import { MAX_LINE_CHARS, MAX_SEGMENTS, parseAnsi, sanitizeLine } from '../ansi';
import { DEFAULT_MAX_BYTES, findMatches, LogBuffer, toRow } from '../logs';
import type { ILogEntry } from '../tokens';

function entry(i: number, message: string): ILogEntry {
  return {
    cursor: `c${i}`,
    realtime: '2026-01-01T00:00:00+00:00',
    realtime_usec: i,
    priority: 6,
    pid: 1,
    identifier: 'x',
    source: 'service',
    message
  };
}

describe('hostile log lines', () => {
  it('strips OSC titles and hyperlinks, terminated or not, and keeps colours', () => {
    expect(sanitizeLine('a\x1b]0;TITLE\x07b').text).toBe('ab');
    expect(sanitizeLine('see \x1b]8;;http://evil/\x1b\\link\x1b]8;;\x1b\\ here').text).toBe('see link here');
    expect(sanitizeLine('cut \x1b]0;never ends').text).toBe('cut ');
    expect(sanitizeLine('8-bit \x9d0;t\x9c ok').text).toBe('8-bit  ok');
    expect(sanitizeLine('\x1b[2Kclear \x1b[?25lcursor \x1b(Bcharset \x1b[31mred\x1b[0m').text).toBe(
      'clear cursor charset \x1b[31mred\x1b[0m'
    );
    expect(sanitizeLine('bell\x07 nul\x00 del\x7f tab\tkept').text).toBe('bell nul del tab\tkept');
  });

  it('keeps at most MAX_LINE_CHARS characters and says how many were left out', () => {
    const long = 'z'.repeat(32768);
    const { text, omitted } = sanitizeLine(long);
    expect(text.length).toBe(MAX_LINE_CHARS);
    expect(omitted).toBe(32768 - MAX_LINE_CHARS);
    // a cut never leaves half an escape sequence
    const styled = 'y'.repeat(MAX_LINE_CHARS - 3) + '\x1b[31mred';
    expect(sanitizeLine(styled).text).toBe('y'.repeat(MAX_LINE_CHARS - 3));
    const row = toRow(entry(1, long));
    expect(row.message.length).toBe(MAX_LINE_CHARS);
    expect(row.omitted).toBe(32768 - MAX_LINE_CHARS);
  });

  it('merges adjacent pieces of the same style and caps the pieces of a line', () => {
    expect(parseAnsi('\x1b[31ma\x1b[31mb\x1b[0m\x1b[0mc')).toEqual([{ text: 'ab', fg: 1 }, { text: 'c' }]);
    const flood = sanitizeLine('\x1b[1mx\x1b[31my'.repeat(4000)).text;
    const segments = parseAnsi(flood);
    expect(segments.length).toBeLessThanOrEqual(MAX_SEGMENTS);
    // nothing shown is lost: the text is all there
    // eslint-disable-next-line no-control-regex
    expect(segments.map(s => s.text).join('')).toBe(flood.replace(/\x1b\[[0-9;]*m/g, ''));
  });

  it('caps the buffer in bytes, not only rows, keeping the newest', () => {
    const buffer = new LogBuffer(1000000, 1024 * 1024);
    for (let k = 0; k < 50; k++) {
      buffer.append(Array.from({ length: 100 }, (_, i) => entry(k * 100 + i, 'q'.repeat(32768))));
    }
    expect(buffer.bytes).toBeLessThanOrEqual(1024 * 1024);
    expect(buffer.rows[buffer.rows.length - 1].cursor).toBe('c4999');
    expect(buffer.trimmed + buffer.length).toBe(5000);
    // older pages fill only what is left
    const before = buffer.bytes;
    buffer.prepend(Array.from({ length: 100 }, (_, i) => entry(-1 - i, 'p'.repeat(32768))));
    expect(buffer.bytes).toBeLessThanOrEqual(1024 * 1024);
    expect(buffer.bytes).toBeGreaterThanOrEqual(before);
    expect(DEFAULT_MAX_BYTES).toBeGreaterThan(0);
  });

  it('searches the cleaned text', () => {
    const buffer = new LogBuffer();
    buffer.append([entry(1, 'a\x1b]0;secret\x07b'), entry(2, 'x\x1b[31my')]);
    expect(findMatches(buffer.rows, 'secret')).toEqual([]);
    expect(findMatches(buffer.rows, 'xy')).toEqual([1]);
    expect(findMatches(buffer.rows, 'ab')).toEqual([0]);
  });
});
