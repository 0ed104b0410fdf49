// A small line chart as inline SVG (no library, no inline style: the CSP
// allows only this origin's style sheet). Series are [{label, points: [{t, v}]}].

const SVG = "http://www.w3.org/2000/svg";
const COLORS = ["#2456b3", "#c2571a", "#17733a", "#8a3ab9", "#b3261e", "#0f7c8c"];

function svg(tag, attributes = {}, text) {
  const element = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) element.setAttribute(name, String(value));
  if (text !== undefined) element.textContent = text;
  return element;
}

export function lineChart(series, { width = 640, height = 180, unit = "" } = {}) {
  const left = 48, right = 150, top = 10, bottom = 24;
  const all = series.flatMap((one) => one.points);
  const root = svg("svg", { class: "chart", width, height, viewBox: `0 0 ${width} ${height}`, role: "img" });
  if (all.length === 0) {
    root.append(svg("text", { class: "axis", x: left, y: height / 2 }, "no samples yet"));
    return root;
  }
  const t0 = Math.min(...all.map((p) => p.t));
  const t1 = Math.max(t0 + 1000, ...all.map((p) => p.t));
  const vMax = Math.max(1, ...all.map((p) => p.v));
  const x = (t) => left + ((t - t0) / (t1 - t0)) * (width - left - right);
  const y = (v) => top + (1 - v / vMax) * (height - top - bottom);
  root.append(
    svg("line", { x1: left, y1: y(0), x2: width - right, y2: y(0), stroke: "#dde2ea" }),
    svg("line", { x1: left, y1: top, x2: left, y2: y(0), stroke: "#dde2ea" }),
    svg("text", { class: "axis", x: 4, y: top + 10 }, `${vMax}${unit}`),
    svg("text", { class: "axis", x: 4, y: y(0) }, `0${unit}`),
    svg("text", { class: "axis", x: left, y: height - 6 }, new Date(t0).toLocaleTimeString()),
    svg("text", { class: "axis", x: width - right, y: height - 6, "text-anchor": "end" }, new Date(t1).toLocaleTimeString()),
  );
  series.forEach((one, index) => {
    const color = COLORS[index % COLORS.length];
    const coordinates = one.points.map((p) => `${x(p.t).toFixed(1)},${y(p.v).toFixed(1)}`).join(" ");
    root.append(svg("polyline", { points: coordinates, fill: "none", stroke: color, "stroke-width": 2 }));
    const last = one.points.at(-1);
    if (last) root.append(svg("circle", { cx: x(last.t), cy: y(last.v), r: 3, fill: color }));
    root.append(svg("text", { x: width - right + 8, y: top + 12 + index * 16, fill: color }, `${one.label}: ${last?.v ?? "–"}${unit}`));
  });
  return root;
}
