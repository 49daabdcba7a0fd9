/**
 * What a terminal of a given width shows after some output: carriage return, newline, erase to
 * the end of the line (ESC [ K), other escape sequences ignored. A character written past the
 * last column would wrap onto a new line: each such line is reported as an overflow.
 */
export interface Screen {
  /** the lines as they stand at the end */
  lines: string[];
  /** lines a character was written past the last column of (what the terminal would wrap) */
  overflows: string[];
}

export function screen(output: string, columns: number): Screen {
  const lines: string[][] = [[]];
  const overflows: string[] = [];
  let row = 0;
  let col = 0;
  for (let i = 0; i < output.length; i++) {
    const c = output[i]!;
    if (c === '\r') col = 0;
    else if (c === '\n') { row++; col = 0; lines[row] ??= []; }
    else if (c === '\x1b') {
      // CSI: ESC [ parameters final-byte
      const m = /^\x1b\[[0-9;?]*([@-~])/.exec(output.slice(i, i + 16));
      if (!m) continue;
      if (m[1] === 'K') lines[row]!.length = Math.min(lines[row]!.length, col);
      i += m[0].length - 1;
    } else {
      if (col >= columns) overflows.push(lines[row]!.join('') + c);
      lines[row]![col++] = c;
    }
  }
  return { lines: lines.map((l) => Array.from(l, (c) => c ?? ' ').join('')), overflows };
}
