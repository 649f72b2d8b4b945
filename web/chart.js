// chart: the loss curves of a training job, train and validation per epoch, drawn as SVG.
const SVG = "http://www.w3.org/2000/svg";
const W = 560, H = 250, M = { left: 44, right: 14, top: 12, bottom: 26 };

function node(tag, attrs, parent) {
  const n = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, v);
  parent?.append(n);
  return n;
}

// About `count` round tick values covering [lo, hi]: steps of 1, 2 or 5 times a power of ten.
function ticks(lo, hi, count) {
  const raw = (hi - lo) / count;
  const p = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * p).find((s) => s >= raw);
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(+v.toFixed(10));
  return out;
}

// Redraws svg for epochs [{epoch, train_loss, val_loss}] on an x axis of `planned` epochs (the
// job's total when known, so the curve fills in from the left as the job runs).
export function drawLossChart(svg, epochs, planned) {
  svg.replaceChildren();
  const last = epochs.length ? epochs[epochs.length - 1].epoch : 0;
  if (!last) {
    node("text", { x: W / 2, y: H / 2, "text-anchor": "middle", class: "empty" }, svg)
      .textContent = "The losses appear here after the first epoch.";
    return;
  }
  const losses = epochs.flatMap((e) => [e.train_loss, e.val_loss]).filter((x) => x != null);
  let lo = Math.min(...losses), hi = Math.max(...losses);
  const pad = Math.max((hi - lo) * 0.1, 0.05);
  lo = Math.max(0, lo - pad);
  hi += pad;
  const xmax = Math.max(planned && planned < 1e6 ? planned : last, 2);
  const x = (epoch) => M.left + ((epoch - 1) / (xmax - 1)) * (W - M.left - M.right);
  const y = (loss) => H - M.bottom - ((loss - lo) / (hi - lo)) * (H - M.top - M.bottom);

  const grid = node("g", { class: "grid axis" }, svg);
  for (const v of ticks(lo, hi, 5)) {
    node("line", { x1: M.left, x2: W - M.right, y1: y(v), y2: y(v) }, grid);
    node("text", { x: M.left - 6, y: y(v) + 4, "text-anchor": "end" }, grid).textContent = String(v);
  }
  for (const v of ticks(1, xmax, Math.min(10, xmax - 1)).filter(Number.isInteger))
    node("text", { x: x(v), y: H - M.bottom + 18, "text-anchor": "middle" }, grid).textContent = String(v);

  for (const [key, name] of [["train_loss", "train"], ["val_loss", "val"]]) {
    const points = epochs.filter((e) => e[key] != null);
    if (!points.length) continue;
    const g = node("g", { class: name }, svg);
    node("polyline", { points: points.map((e) => `${x(e.epoch)},${y(e[key])}`).join(" ") }, g);
    for (const e of points) {
      const dot = node("circle", { cx: x(e.epoch), cy: y(e[key]), r: 3.5 }, g);
      node("title", {}, dot).textContent =
        `epoch ${e.epoch}: ${name === "train" ? "training" : "validation"} loss ${e[key].toFixed(3)}`;
    }
  }
}
