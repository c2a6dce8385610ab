/**
 * The drawing layer of the benchmark chart: items that know their boxes, a
 * conservative estimate of how wide a text is, and the SVG they serialize to.
 *
 * A layout is built as a list of items first and written out last, so that
 * its geometry (where every text lies, how tall every bar is) can be checked
 * without a browser: the chart's tests assert that no two text boxes
 * overlap, which holds in a browser as long as the estimate here is at least
 * the browser's width.
 *
 * ```
 *   layout ──► Item[] ──► svgDocument() ──► "<svg …>"
 *                │
 *                └──► tests: text boxes, bar heights, marker colours
 * ```
 *
 * @module
 */

/** The chart's fonts. The width table below is DejaVu Sans's; Verdana (Vera's ancestor) is within a few per cent of it. */
export const FONT_FAMILY = "'DejaVu Sans', Verdana, sans-serif";

/**
 * Advance widths of printable ASCII (U+0020–U+007E) in DejaVu Sans, in
 * thousandths of the font size, regular then bold, as a browser reports
 * them (canvas `measureText`).
 */
const WIDTHS_REGULAR: readonly number[] = [
  318, 401, 460, 838, 636, 950, 780, 275, 390, 390, 500, 838, 318, 361, 318, 337, 636, 636, 636,
  636, 636, 636, 636, 636, 636, 636, 337, 337, 838, 838, 838, 531, 1000, 684, 686, 698, 770, 632,
  575, 775, 752, 295, 295, 656, 557, 863, 748, 787, 603, 787, 695, 635, 611, 732, 684, 989, 685,
  611, 685, 390, 337, 390, 838, 500, 500, 613, 635, 550, 635, 615, 352, 635, 634, 278, 278, 579,
  278, 974, 634, 612, 635, 635, 411, 521, 392, 634, 592, 818, 592, 592, 525, 636, 337, 636, 838,
];
const WIDTHS_BOLD: readonly number[] = [
  348, 456, 521, 838, 696, 1002, 872, 306, 457, 457, 523, 838, 380, 415, 380, 365, 696, 696, 696,
  696, 696, 696, 696, 696, 696, 696, 400, 400, 838, 838, 838, 580, 1000, 774, 762, 734, 830, 683,
  683, 821, 837, 372, 372, 775, 637, 995, 837, 850, 733, 850, 770, 720, 682, 812, 774, 1103, 771,
  724, 725, 457, 365, 457, 838, 500, 500, 675, 716, 593, 716, 678, 435, 716, 712, 343, 343, 665,
  343, 1042, 712, 687, 716, 716, 493, 595, 478, 712, 652, 924, 645, 652, 582, 712, 365, 712, 838,
];
/**
 * Head-room over the table: another font chosen by the viewer (Verdana's
 * punctuation and space are a little wider) must still fit the box.
 */
const WIDTH_MARGIN = 1.1;
/** A character outside the table counts as wide as the widest (W, an em dash). */
const WIDTH_OTHER = 1100;
/** A text's box spans this much of its size above its baseline and below it (DejaVu's ascent and descent, rounded up). */
const ASCENT = 0.95;
const DESCENT = 0.25;

/**
 * A conservative width of `text` in user units at font size `size`: at least
 * what a browser draws in DejaVu Sans or Verdana.
 */
export function textWidth(text: string, size: number, bold = false): number {
  const table = bold ? WIDTHS_BOLD : WIDTHS_REGULAR;
  let units = 0;
  for (const ch of text) {
    const code = ch.codePointAt(0)!;
    units += code >= 32 && code < 127 ? table[code - 32]! : WIDTH_OTHER;
  }
  return (units / 1000) * size * WIDTH_MARGIN;
}

/** An axis-aligned rectangle. */
export interface Box {
  x: number;
  y: number;
  w: number;
  h: number;
}

/** Whether two boxes share more than `slack` of each axis (touching is not overlapping). */
export function boxesOverlap(a: Box, b: Box, slack = 0.01): boolean {
  return a.x + a.w - slack > b.x && b.x + b.w - slack > a.x && a.y + a.h - slack > b.y && b.y + b.h - slack > a.y;
}

/** A text, at its anchor point on its baseline; `rotate` turns it to read bottom to top. */
export interface TextItem {
  kind: 'text';
  x: number;
  y: number;
  text: string;
  size: number;
  anchor: 'start' | 'middle' | 'end';
  bold?: boolean;
  fill?: string;
  rotate?: boolean;
  /** Shown on hover: the full text when `text` was shortened. */
  title?: string;
  /** The space the text takes, rotation included. */
  box: Box;
  /** What the text is, for tests (`group-label`, `value`, `summary-label`, ...). */
  role?: string;
}

/** A filled rectangle (a bar, a swatch, a band). */
export interface RectItem {
  kind: 'rect';
  x: number;
  y: number;
  w: number;
  h: number;
  fill: string;
  opacity?: number;
  title?: string;
  role?: string;
}

/** A line (an axis, a grid line, a whisker, a target mark). */
export interface LineItem {
  kind: 'line';
  x1: number;
  y1: number;
  x2: number;
  y2: number;
  stroke: string;
  width?: number;
  dash?: string;
  title?: string;
  role?: string;
}

/** A point marker: a circle or a diamond centred on (x, y). */
export interface MarkerItem {
  kind: 'marker';
  shape: 'circle' | 'diamond';
  x: number;
  y: number;
  r: number;
  fill: string;
  stroke?: string;
  title?: string;
  role?: string;
}

/** Anything the chart draws. */
export type Item = TextItem | RectItem | LineItem | MarkerItem;

/** Options of {@link text}. */
export interface TextOptions {
  anchor?: TextItem['anchor'];
  bold?: boolean;
  fill?: string;
  rotate?: boolean;
  title?: string;
  role?: string;
}

/** A text item with its box computed (see {@link TextItem}). */
export function text(x: number, y: number, content: string, size: number, options: TextOptions = {}): TextItem {
  const anchor = options.anchor ?? 'start';
  const w = textWidth(content, size, options.bold);
  const shift = anchor === 'start' ? 0 : anchor === 'middle' ? w / 2 : w;
  // Rotated by -90° about its anchor, the text's advance runs up the page and
  // its ascent to the left of the anchor.
  const box: Box = options.rotate
    ? { x: x - ASCENT * size, y: y - w + shift, w: (ASCENT + DESCENT) * size, h: w }
    : { x: x - shift, y: y - ASCENT * size, w, h: (ASCENT + DESCENT) * size };
  const item: TextItem = { kind: 'text', x, y, text: content, size, anchor, box };
  if (options.bold) item.bold = true;
  if (options.fill !== undefined) item.fill = options.fill;
  if (options.rotate) item.rotate = true;
  if (options.title !== undefined) item.title = options.title;
  if (options.role !== undefined) item.role = options.role;
  return item;
}

/** The height of one line of text at `size`, with the boxes of adjacent lines clear of each other. */
export function lineHeight(size: number): number {
  return Math.ceil((ASCENT + DESCENT) * size + 1);
}

/** How far below the top of a line's box its baseline is. */
export function baselineOffset(size: number): number {
  return ASCENT * size;
}

/**
 * `content` shortened with an ellipsis to fit `maxWidth` (unchanged when it
 * fits); `undefined` when not even one character and the ellipsis fit.
 */
export function ellipsize(content: string, maxWidth: number, size: number, bold = false): string | undefined {
  if (textWidth(content, size, bold) <= maxWidth) return content;
  const chars = [...content];
  for (let n = chars.length - 1; n >= 1; n--) {
    const candidate = `${chars.slice(0, n).join('').trimEnd()}…`;
    if (textWidth(candidate, size, bold) <= maxWidth) return candidate;
  }
  return undefined;
}

/**
 * `content` broken into lines no wider than `maxWidth`, at most `maxLines`
 * of them: at spaces if that is enough, else also after `=`, `-`, `/`, `,`,
 * `_` or `.` inside a word (`chunks=` / `one-per-chunk`). `undefined` when a
 * piece alone is wider or more lines would be needed.
 */
export function wrapWords(content: string, maxWidth: number, size: number, maxLines: number, bold = false): string[] | undefined {
  const words = content.split(' ').filter((w) => w !== '');
  const atSpaces = fill(
    words.map((w) => ({ piece: w, joiner: ' ' })),
    maxWidth,
    size,
    maxLines,
    bold,
  );
  if (atSpaces !== undefined) return atSpaces;
  const pieces = words.flatMap((w) => w.split(/(?<=[=\-/,_.])/).map((piece, i) => ({ piece, joiner: i === 0 ? ' ' : '' })));
  return fill(pieces, maxWidth, size, maxLines, bold);
}

/** Greedy line filling of {@link wrapWords}: each piece joins the line before it with its joiner, or starts a new line. */
function fill(
  pieces: ReadonlyArray<{ piece: string; joiner: string }>,
  maxWidth: number,
  size: number,
  maxLines: number,
  bold: boolean,
): string[] | undefined {
  const lines: string[] = [];
  let current = '';
  for (const { piece, joiner } of pieces) {
    if (textWidth(piece, size, bold) > maxWidth) return undefined;
    const joined = current === '' ? piece : `${current}${joiner}${piece}`;
    if (textWidth(joined, size, bold) <= maxWidth) {
      current = joined;
    } else {
      lines.push(current);
      current = piece;
    }
    if (lines.length >= maxLines) return undefined;
  }
  if (current !== '' || lines.length === 0) lines.push(current);
  return lines.length <= maxLines ? lines : undefined;
}

/** Escapes text for SVG content and attributes. */
export function escapeXml(content: string): string {
  return content.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** A coordinate as written: one decimal, no `-0`. */
function n(v: number): string {
  const s = v.toFixed(1);
  return s === '-0.0' ? '0.0' : s;
}

function titled(open: string, title: string | undefined, close: string): string {
  return title === undefined ? `${open}/>` : `${open}><title>${escapeXml(title)}</title></${close}>`;
}

/** One item as SVG markup. */
export function itemSvg(item: Item): string {
  switch (item.kind) {
    case 'text': {
      const attrs = [
        `x="${n(item.x)}"`,
        `y="${n(item.y)}"`,
        item.anchor === 'start' ? '' : `text-anchor="${item.anchor}"`,
        `font-size="${item.size}"`,
        item.bold ? 'font-weight="bold"' : '',
        item.fill === undefined ? '' : `fill="${item.fill}"`,
        item.rotate ? `transform="rotate(-90 ${n(item.x)} ${n(item.y)})"` : '',
      ].filter((a) => a !== '');
      const title = item.title === undefined ? '' : `<title>${escapeXml(item.title)}</title>`;
      return `<text ${attrs.join(' ')}>${title}${escapeXml(item.text)}</text>`;
    }
    case 'rect':
      return titled(
        `<rect x="${n(item.x)}" y="${n(item.y)}" width="${n(item.w)}" height="${n(item.h)}" fill="${item.fill}"${
          item.opacity === undefined ? '' : ` fill-opacity="${item.opacity}"`
        }`,
        item.title,
        'rect',
      );
    case 'line':
      return titled(
        `<line x1="${n(item.x1)}" y1="${n(item.y1)}" x2="${n(item.x2)}" y2="${n(item.y2)}" stroke="${item.stroke}"${
          item.width === undefined ? '' : ` stroke-width="${item.width}"`
        }${item.dash === undefined ? '' : ` stroke-dasharray="${item.dash}"`}`,
        item.title,
        'line',
      );
    case 'marker': {
      const stroke = item.stroke === undefined ? '' : ` stroke="${item.stroke}" stroke-width="1"`;
      if (item.shape === 'circle') {
        return titled(`<circle cx="${n(item.x)}" cy="${n(item.y)}" r="${n(item.r)}" fill="${item.fill}"${stroke}`, item.title, 'circle');
      }
      const r = item.r * 1.25;
      const d = `M${n(item.x)} ${n(item.y - r)}L${n(item.x + r)} ${n(item.y)}L${n(item.x)} ${n(item.y + r)}L${n(item.x - r)} ${n(item.y)}Z`;
      return titled(`<path d="${d}" fill="${item.fill}"${stroke}`, item.title, 'path');
    }
  }
}

/** A whole standalone SVG document: a white page, then the items in order. */
export function svgDocument(width: number, height: number, items: readonly Item[]): string {
  const w = Math.ceil(width);
  const h = Math.ceil(height);
  return `${[
    `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}" font-family="${FONT_FAMILY}" font-size="12">`,
    `<rect width="100%" height="100%" fill="#ffffff"/>`,
    ...items.map(itemSvg),
    '</svg>',
  ].join('\n')}\n`;
}
