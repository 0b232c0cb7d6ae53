// Drawing on the page's canvases. Maps are drawn nearest-neighbour (every token a visible square,
// as viz.figures.upsample), the pixel and its layer cell marked as the notebook inspector marks them.

export const MARKER_COLOUR = "#00e5ff"; // viz.figures.MARKER_COLOUR

/** Put ``pixels`` (an ImageData of any size) on ``canvas``, scaled up without smoothing. */
export function drawPixels(canvas, pixels) {
  const source = new OffscreenCanvas(pixels.width, pixels.height);
  source.getContext("2d").putImageData(pixels, 0, 0);
  const ctx = canvas.getContext("2d");
  ctx.imageSmoothingEnabled = false;
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  ctx.drawImage(source, 0, 0, canvas.width, canvas.height);
}

/** Mark image pixel (y, x) and the cell (row, col) of a ``cells``×``cells`` grid over ``canvas``. */
export function drawMarker(canvas, imageSize, y, x, cells, row, col) {
  const ctx = canvas.getContext("2d");
  const px = canvas.width / imageSize;
  const cell = canvas.width / cells;
  ctx.save();
  ctx.strokeStyle = MARKER_COLOUR;
  ctx.lineWidth = 1.5;
  ctx.strokeRect(col * cell + 0.75, row * cell + 0.75, cell - 1.5, cell - 1.5);
  ctx.lineWidth = 2;
  const cx = (x + 0.5) * px;
  const cy = (y + 0.5) * px;
  const arm = Math.max(6, px * 1.5);
  ctx.beginPath();
  ctx.moveTo(cx - arm, cy); ctx.lineTo(cx + arm, cy);
  ctx.moveTo(cx, cy - arm); ctx.lineTo(cx, cy + arm);
  ctx.stroke();
  ctx.restore();
}

/** The colour of class ``k``'s bar for layer ``i`` of ``n``: the class colour mixed with white,
 *  pale (coarse) to full (fine), as viz.figures.plot_pixel_distribution. */
function shade(colour, i, n) {
  const s = n > 1 ? 0.35 + (0.65 * i) / (n - 1) : 1;
  return `rgb(${colour.map((c) => Math.round(c * s + 255 * (1 - s))).join(",")})`;
}

/** Grouped bars: for each class, one bar per layer (coarse to fine); the selected layer outlined thicker. */
export function drawBars(canvas, distributions, layers, classes, palette, truth, selected, title) {
  const ctx = canvas.getContext("2d");
  const W = canvas.width;
  const H = canvas.height;
  const left = 46, right = 8, top = 44, bottom = 78;
  const plotW = W - left - right;
  const plotH = H - top - bottom;
  ctx.clearRect(0, 0, W, H);
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, W, H);
  ctx.font = "12px system-ui, sans-serif";
  ctx.fillStyle = "#222";
  ctx.textAlign = "left";
  ctx.fillText(title, left, 16);
  // axes and grid
  ctx.strokeStyle = "#ccc";
  ctx.lineWidth = 1;
  ctx.textAlign = "right";
  for (const v of [0, 0.25, 0.5, 0.75, 1]) {
    const y = top + plotH * (1 - v);
    ctx.beginPath(); ctx.moveTo(left, y); ctx.lineTo(left + plotW, y); ctx.stroke();
    ctx.fillText(v.toFixed(2), left - 4, y + 4);
  }
  ctx.save();
  ctx.translate(12, top + plotH / 2);
  ctx.rotate(-Math.PI / 2);
  ctx.textAlign = "center";
  ctx.fillText("softmax weight", 0, 0);
  ctx.restore();
  const k = classes.length;
  const n = layers.length;
  const group = plotW / k;
  const barW = (0.8 * group) / n;
  for (let c = 0; c < k; c++) {
    layers.forEach((layer, i) => {
      const value = distributions[layer.name][c];
      const x = left + group * c + group * 0.1 + barW * i;
      const h = plotH * value;
      ctx.fillStyle = shade(palette[c], i, n);
      ctx.fillRect(x, top + plotH - h, barW, h);
      ctx.strokeStyle = "#000";
      ctx.lineWidth = layer.name === selected ? 2 : 0.5;
      ctx.strokeRect(x, top + plotH - h, barW, h);
    });
    ctx.save();
    ctx.translate(left + group * (c + 0.5), top + plotH + 8);
    ctx.rotate(-Math.PI / 4);
    ctx.textAlign = "right";
    ctx.fillStyle = "#222";
    ctx.font = c === truth ? "bold 12px system-ui, sans-serif" : "12px system-ui, sans-serif";
    ctx.fillText((c === truth ? "★ " : "") + classes[c], 0, 4);
    ctx.restore();
  }
  // legend: layers pale (coarse) to dark (fine)
  ctx.textAlign = "left";
  ctx.font = "11px system-ui, sans-serif";
  ctx.fillStyle = "#444";
  ctx.fillText("layers, coarse → fine (pale → dark):", left, 33);
  let lx = left + ctx.measureText("layers, coarse → fine (pale → dark):").width + 10;
  layers.forEach((layer, i) => {
    const label = layer.name + (layer.name === selected ? " (chosen)" : "");
    ctx.fillStyle = shade([90, 90, 90], i, n);
    ctx.fillRect(lx, 24, 12, 10);
    ctx.strokeStyle = "#000";
    ctx.lineWidth = layer.name === selected ? 2 : 0.5;
    ctx.strokeRect(lx, 24, 12, 10);
    ctx.fillStyle = "#222";
    ctx.fillText(label, lx + 16, 33);
    lx += 16 + ctx.measureText(label).width + 14;
  });
}
