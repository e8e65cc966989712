// charts.js: small SVG charts for the queue statistics (no library). Each
// chart scales to its container through its viewBox, names itself with
// aria-label (a one-line summary a screen reader can say), and gives each
// bucket a <title> so hovering shows the value.

import { s, fmtClock } from './dom.js';

const W = 400, H = 170;
const PAD = { l: 44, r: 8, t: 8, b: 22 };

/** The y axis: a round step (1, 2 or 5 times a power of ten) and a top that is a whole number of steps. */
function yAxis(max, unit) {
  if (!(max > 0)) return unit === 'ms' ? { top: 1000, step: 250 } : { top: 4, step: 1 };
  const raw = max / 4;
  const p = 10 ** Math.floor(Math.log10(raw));
  let step = 10 * p;
  for (const m of [1, 2, 5]) {
    if (raw <= m * p) {
      step = m * p;
      break;
    }
  }
  return { top: Math.ceil(max / step - 1e-9) * step, step };
}

function fmtTick(v, unit) {
  if (unit === 'ms') {
    if (v >= 60000) return `${+(v / 60000).toFixed(1)}m`;
    if (v >= 1000) return `${+(v / 1000).toFixed(1)}s`;
    return `${+v.toFixed(v < 10 ? 1 : 0)}ms`;
  }
  if (v >= 1e6) return `${+(v / 1e6).toFixed(1)}M`;
  if (v >= 1e3) return `${+(v / 1e3).toFixed(1)}k`;
  return String(+v.toFixed(2));
}

/**
 * chart({times, series: [{name, values, kind: 'line'|'bar'}], unit, label, testid})
 * times: bucket starts in ms; values: numbers or null (no data).
 */
export function chart({ times, series, unit = "", label, testid }) {
  const n = times.length;
  let max = 0;
  for (const se of series) for (const v of se.values) if (v !== null && v > max) max = v;
  const { top, step } = yAxis(max, unit);
  const iw = W - PAD.l - PAD.r, ih = H - PAD.t - PAD.b;
  const x = (i) => PAD.l + (n <= 1 ? 0 : (i * iw) / (n - 1));
  const bw = n ? iw / n : iw;
  const xb = (i) => PAD.l + i * bw;
  const y = (v) => PAD.t + ih - (v / top) * ih;

  const svg = s('svg', {
    class: 'chart', viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': label, 'data-testid': testid,
  });
  for (let v = 0; v <= top + step / 2; v += step) {
    svg.append(
      s('line', { class: 'grid', x1: PAD.l, x2: W - PAD.r, y1: y(v), y2: y(v) }),
      s('text', { x: PAD.l - 4, y: y(v) + 3, 'text-anchor': 'end' }, fmtTick(v, unit)),
    );
  }
  svg.append(s('line', { class: 'axis', x1: PAD.l, x2: W - PAD.r, y1: PAD.t + ih, y2: PAD.t + ih }));
  if (n) {
    for (const i of [0, Math.floor((n - 1) / 2), n - 1]) {
      svg.append(s('text', { x: x(i), y: H - 6, 'text-anchor': i === 0 ? 'start' : i === n - 1 ? 'end' : 'middle' },
        fmtClock(times[i])));
    }
  }
  series.forEach((se, si) => {
    if (se.kind === 'bar') {
      se.values.forEach((v, i) => {
        if (!v) return;
        const r = s('rect', { class: `b${si}`, x: xb(i) + bw * 0.1, width: Math.max(1, bw * 0.8), y: y(v), height: PAD.t + ih - y(v) });
        r.append(s('title', {}, `${fmtClock(times[i])}: ${fmtTick(v, unit)} ${se.name}`));
        svg.append(r);
      });
      return;
    }
    // A line, broken where a bucket has no data.
    let d = '';
    let pen = false;
    se.values.forEach((v, i) => {
      if (v === null || v === undefined) {
        pen = false;
        return;
      }
      d += `${pen ? 'L' : 'M'}${x(i).toFixed(1)},${y(v).toFixed(1)}`;
      pen = true;
    });
    if (d) svg.append(s('path', { class: `s${si}`, d }));
    se.values.forEach((v, i) => {
      if (!v) return; // a point for each bucket that has something (and its value on hover)
      const c = s('circle', { cx: x(i), cy: y(v), r: 2.2, class: `s${si}` });
      c.append(s('title', {}, `${fmtClock(times[i])}: ${fmtTick(v, unit)} ${se.name}`));
      svg.append(c);
    });
  });
  if (!max) {
    svg.append(s('text', { x: PAD.l + iw / 2, y: PAD.t + ih / 2, 'text-anchor': 'middle' }, 'no data in this range'));
  }
  return svg;
}
