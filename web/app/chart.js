// chart.js - two small SVG charts (horizontal bars, a line over time). Colours come from the
// stylesheet (classes), so they follow the theme; each chart is an image with a text
// alternative that lists its values.
const NS = 'http://www.w3.org/2000/svg';

function s(tag, attrs, text) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, String(v));
  if (text != null) el.textContent = text;
  return el;
}

function frame(w, hgt, title, summary) {
  const svg = s('svg', { viewBox: `0 0 ${w} ${hgt}`, class: 'chart', role: 'img', 'aria-label': `${title}: ${summary}` });
  svg.append(s('title', null, title));
  return svg;
}

// barChart([{label, value}], {title, unit}): one bar per item, its value at the end.
export function barChart(items, { title = 'Chart', unit = '' } = {}) {
  const rowH = 24, labelW = 150, w = 420, pad = 6;
  const hgt = Math.max(1, items.length) * rowH + pad * 2;
  const max = Math.max(1, ...items.map((d) => d.value));
  const summary = items.map((d) => `${d.label} ${d.value}${unit ? ' ' + unit : ''}`).join(', ') || 'no data';
  const svg = frame(w, hgt, title, summary);
  items.forEach((d, i) => {
    const y = pad + i * rowH;
    const bw = ((w - labelW - 44) * d.value) / max;
    const label = d.label.length > 19 ? d.label.slice(0, 18) + '…' : d.label;
    svg.append(
      s('text', { x: labelW - 6, y: y + rowH / 2 + 4, 'text-anchor': 'end' }, label),
      s('rect', { class: 'bar', x: labelW, y: y + 4, width: Math.max(d.value ? 2 : 0, bw), height: rowH - 8, rx: 3 }),
      s('text', { x: labelW + bw + 6, y: y + rowH / 2 + 4 }, String(d.value)));
  });
  svg.append(s('line', { class: 'axis', x1: labelW, y1: pad, x2: labelW, y2: hgt - pad }));
  return svg;
}

// lineChart([{date, count}], {title}): a 30-day trend.
export function lineChart(points, { title = 'Trend' } = {}) {
  const w = 400, hgt = 180, l = 34, r = 10, t = 12, b = 26;
  const max = Math.max(1, ...points.map((p) => p.count));
  const total = points.reduce((a, p) => a + p.count, 0);
  const summary = points.length ? `${total} in ${points.length} days, at most ${max} a day` : 'no data';
  const svg = frame(w, hgt, title, summary);
  const x = (i) => l + (points.length < 2 ? 0 : (i * (w - l - r)) / (points.length - 1));
  const y = (v) => hgt - b - (v * (hgt - t - b)) / max;
  svg.append(
    s('line', { class: 'axis', x1: l, y1: hgt - b, x2: w - r, y2: hgt - b }),
    s('line', { class: 'axis', x1: l, y1: t, x2: l, y2: hgt - b }),
    s('text', { x: l - 6, y: t + 4, 'text-anchor': 'end' }, String(max)),
    s('text', { x: l - 6, y: hgt - b, 'text-anchor': 'end' }, '0'));
  if (points.length) {
    svg.append(s('polyline', { class: 'line', points: points.map((p, i) => `${x(i)},${y(p.count)}`).join(' ') }));
    points.forEach((p, i) => { if (p.count) svg.append(s('circle', { class: 'dot', cx: x(i), cy: y(p.count), r: 3 })); });
    const first = points[0].date, last = points[points.length - 1].date;
    svg.append(
      s('text', { x: l, y: hgt - 8 }, String(first).slice(5, 10)),
      s('text', { x: w - r, y: hgt - 8, 'text-anchor': 'end' }, String(last).slice(5, 10)));
  }
  return svg;
}
