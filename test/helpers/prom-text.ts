/**
 * A strict parser of Prometheus's text exposition format (version 0.0.4),
 * for tests that scrape `/metrics`: anything a Prometheus server would
 * refuse, or that breaks the format's rules, throws with the line number.
 *
 * ```
 *   # HELP name text            at most once per family, before its samples
 *   # TYPE name counter|gauge|histogram|summary|untyped   at most once, before its samples
 *   name{label="value",...} value [timestamp]
 *     metric and label names by the format's grammar; values escaped (\\ \" \n);
 *     value a float, +Inf, -Inf or NaN; no label twice; no series twice
 *   a family's lines are contiguous (never interleaved with another family's)
 *   histogram: name_bucket{le} cumulative and non-decreasing, a +Inf bucket
 *              equal to name_count, and name_sum, for every label set
 *   counter:   values >= 0
 * ```
 *
 * @module
 */

/** One sample line. */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** One metric family. */
export interface Family {
  name: string;
  type: string;
  help: string | undefined;
  samples: Sample[];
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const TYPES = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped']);

/** The error of a line that breaks the format. */
export class ExpositionError extends Error {
  constructor(
    readonly line: number,
    message: string,
  ) {
    super(`line ${line}: ${message}`);
    this.name = 'ExpositionError';
  }
}

function parseValue(s: string, line: number): number {
  if (s === '+Inf') return Number.POSITIVE_INFINITY;
  if (s === '-Inf') return Number.NEGATIVE_INFINITY;
  if (s === 'NaN') return Number.NaN;
  if (!/^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/.test(s)) throw new ExpositionError(line, `bad value ${JSON.stringify(s)}`);
  return Number(s);
}

/** The family a sample name belongs to, given the declared families. */
function familyOf(name: string, types: Map<string, string>): string {
  for (const suffix of ['_bucket', '_sum', '_count']) {
    if (name.endsWith(suffix)) {
      const base = name.slice(0, -suffix.length);
      const t = types.get(base);
      if (t === 'histogram' || (t === 'summary' && suffix !== '_bucket')) return base;
    }
  }
  return name;
}

/** Parses `{a="1",b="x\"y"}` starting at `i` (the `{`); returns the labels and the index after `}`. */
function parseLabels(text: string, i: number, line: number): { labels: Record<string, string>; end: number } {
  const labels: Record<string, string> = {};
  i++; // '{'
  for (;;) {
    if (text[i] === '}') return { labels, end: i + 1 };
    const eq = text.indexOf('=', i);
    if (eq < 0) throw new ExpositionError(line, 'label without =');
    const name = text.slice(i, eq);
    if (!LABEL_NAME.test(name)) throw new ExpositionError(line, `bad label name ${JSON.stringify(name)}`);
    if (Object.prototype.hasOwnProperty.call(labels, name)) throw new ExpositionError(line, `label ${name} twice`);
    if (text[eq + 1] !== '"') throw new ExpositionError(line, `label ${name}: value not quoted`);
    let j = eq + 2;
    let value = '';
    for (;;) {
      const c = text[j];
      if (c === undefined) throw new ExpositionError(line, `label ${name}: unterminated value`);
      if (c === '"') break;
      if (c === '\\') {
        const n = text[j + 1];
        if (n === '\\') value += '\\';
        else if (n === '"') value += '"';
        else if (n === 'n') value += '\n';
        else throw new ExpositionError(line, `label ${name}: bad escape \\${n ?? ''}`);
        j += 2;
        continue;
      }
      value += c;
      j++;
    }
    labels[name] = value;
    i = j + 1;
    if (text[i] === ',') {
      i++;
      continue;
    }
    if (text[i] !== '}') throw new ExpositionError(line, `expected , or } after label ${name}`);
  }
}

/**
 * Parses an exposition strictly (see the module comment).
 *
 * @throws ExpositionError at the first line that breaks the format.
 */
export function parseExposition(text: string): Map<string, Family> {
  if (text.length > 0 && !text.endsWith('\n')) throw new ExpositionError(text.split('\n').length, 'the exposition must end with a line feed');
  const families = new Map<string, Family>();
  const types = new Map<string, string>();
  const closed = new Set<string>();
  const series = new Set<string>();
  let current: string | null = null;
  const enter = (name: string, line: number): Family => {
    if (current !== name) {
      if (closed.has(name)) throw new ExpositionError(line, `family ${name} is not contiguous`);
      if (current !== null) closed.add(current);
      current = name;
    }
    let f = families.get(name);
    if (f === undefined) {
      f = { name, type: 'untyped', help: undefined, samples: [] };
      families.set(name, f);
    }
    return f;
  };
  const lines = text.split('\n');
  for (let k = 0; k < lines.length; k++) {
    const raw = lines[k]!;
    const line = k + 1;
    if (raw === '') continue;
    if (raw.startsWith('#')) {
      const m = /^# (HELP|TYPE) (\S+)(?: (.*))?$/.exec(raw);
      if (m === null) continue; // a plain comment
      const [, kind, name, rest] = m as unknown as [string, string, string, string | undefined];
      if (!METRIC_NAME.test(name)) throw new ExpositionError(line, `bad metric name ${JSON.stringify(name)}`);
      const f = enter(name, line);
      if (kind === 'HELP') {
        if (f.help !== undefined) throw new ExpositionError(line, `HELP of ${name} twice`);
        f.help = rest ?? '';
      } else {
        if (types.has(name)) throw new ExpositionError(line, `TYPE of ${name} twice`);
        if (f.samples.length > 0) throw new ExpositionError(line, `TYPE of ${name} after its samples`);
        if (rest === undefined || !TYPES.has(rest)) throw new ExpositionError(line, `bad type ${JSON.stringify(rest)}`);
        types.set(name, rest);
        f.type = rest;
      }
      continue;
    }
    const nameEnd = raw.search(/[{ ]/);
    if (nameEnd <= 0) throw new ExpositionError(line, 'a sample needs a name and a value');
    const name = raw.slice(0, nameEnd);
    if (!METRIC_NAME.test(name)) throw new ExpositionError(line, `bad metric name ${JSON.stringify(name)}`);
    let labels: Record<string, string> = {};
    let i = nameEnd;
    if (raw[i] === '{') {
      const r = parseLabels(raw, i, line);
      labels = r.labels;
      i = r.end;
    }
    if (raw[i] !== ' ') throw new ExpositionError(line, 'expected a space before the value');
    const parts = raw.slice(i + 1).split(' ');
    if (parts.length > 2 || parts[0] === '') throw new ExpositionError(line, 'expected a value and an optional timestamp');
    const value = parseValue(parts[0]!, line);
    if (parts.length === 2 && !/^-?\d+$/.test(parts[1]!)) throw new ExpositionError(line, `bad timestamp ${JSON.stringify(parts[1])}`);
    const fam = familyOf(name, types);
    const f = enter(fam, line);
    const key = `${name}${JSON.stringify(Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : 1)))}`;
    if (series.has(key)) throw new ExpositionError(line, `series ${name}${JSON.stringify(labels)} twice`);
    series.add(key);
    if (f.type === 'counter' && !(value >= 0)) throw new ExpositionError(line, `counter ${name} is ${value}`);
    if (f.type === 'histogram' && name.endsWith('_bucket')) {
      if (labels['le'] === undefined) throw new ExpositionError(line, `bucket of ${fam} without le`);
      parseValue(labels['le'], line);
    }
    f.samples.push({ name, labels, value });
  }
  for (const f of families.values()) if (f.type === 'histogram') checkHistogram(f);
  return families;
}

/** The label set of a sample without `le`, as a key. */
function groupKey(labels: Record<string, string>): string {
  return JSON.stringify(Object.entries(labels).filter(([k]) => k !== 'le').sort(([a], [b]) => (a < b ? -1 : 1)));
}

function checkHistogram(f: Family): void {
  const groups = new Map<string, { buckets: Array<[number, number]>; sum?: number; count?: number }>();
  for (const s of f.samples) {
    const key = groupKey(s.labels);
    let g = groups.get(key);
    if (g === undefined) groups.set(key, (g = { buckets: [] }));
    if (s.name === `${f.name}_bucket`) g.buckets.push([parseValue(s.labels['le']!, 0), s.value]);
    else if (s.name === `${f.name}_sum`) g.sum = s.value;
    else if (s.name === `${f.name}_count`) g.count = s.value;
    else throw new ExpositionError(0, `histogram ${f.name} has a sample ${s.name}`);
  }
  for (const [key, g] of groups) {
    if (g.sum === undefined || g.count === undefined) throw new ExpositionError(0, `histogram ${f.name}${key} lacks _sum or _count`);
    let lastLe = Number.NEGATIVE_INFINITY;
    let lastCount = 0;
    for (const [le, c] of g.buckets) {
      if (!(le > lastLe)) throw new ExpositionError(0, `histogram ${f.name}${key}: buckets not in ascending le order`);
      if (c < lastCount) throw new ExpositionError(0, `histogram ${f.name}${key}: bucket le=${le} below the previous one`);
      lastLe = le;
      lastCount = c;
    }
    if (lastLe !== Number.POSITIVE_INFINITY) throw new ExpositionError(0, `histogram ${f.name}${key} lacks the +Inf bucket`);
    if (lastCount !== g.count) throw new ExpositionError(0, `histogram ${f.name}${key}: +Inf bucket ${lastCount} != _count ${g.count}`);
  }
}

/** The value of the one sample of `name` whose labels include `labels`; throws if none or several match. */
export function valueOf(families: Map<string, Family>, name: string, labels: Record<string, string> = {}): number {
  const matches: Sample[] = [];
  for (const f of families.values()) {
    for (const s of f.samples) {
      if (s.name !== name) continue;
      if (Object.entries(labels).every(([k, v]) => s.labels[k] === v)) matches.push(s);
    }
  }
  if (matches.length !== 1) throw new Error(`${matches.length} samples of ${name}${JSON.stringify(labels)}`);
  return matches[0]!.value;
}

/** True when some sample of `name` (with `labels`) exists. */
export function hasSample(families: Map<string, Family>, name: string, labels: Record<string, string> = {}): boolean {
  for (const f of families.values()) {
    for (const s of f.samples) if (s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)) return true;
  }
  return false;
}
