// What one recorded forward pass says about attention, computed from a decoder's logits exactly
// as ca2sis_lib.viz.record.AttentionRecording does (notebook 04's figures):
//   logits of a layer: (1, heads, K, h, w), pre-softmax, row-major
//   pixelDistribution  each head's softmax over K at the pixel's cell; the chosen head, or their mean
//   argmaxMap          argmax over K of the chosen head's logits, or of the head-averaged logits

/** Image pixel (y, x) -> the cell (row, col) of a layer's h×w grid that contains it (layer_cell). */
export function layerCell(layer, imageSize, y, x) {
  return [Math.floor((y * layer.size) / imageSize), Math.floor((x * layer.size) / imageSize)];
}

function softmax(values) {
  const top = Math.max(...values);
  const exps = values.map((v) => Math.exp(v - top));
  const total = exps.reduce((a, b) => a + b, 0);
  return exps.map((e) => e / total);
}

/** The K logits of one head at one cell. */
function cellLogits(logits, layer, numClasses, head, row, col) {
  const plane = layer.size * layer.size;
  const base = head * numClasses * plane + row * layer.size + col;
  return Array.from({ length: numClasses }, (_, k) => logits[base + k * plane]);
}

/** (K,) softmax weights of pixel (y, x) at ``layer``: head ``head``, or the mean of the heads' softmax
 *  when head is -1 or the layer has fewer heads (pixel_distribution). */
export function pixelDistribution(logits, layer, numClasses, imageSize, y, x, head) {
  const [row, col] = layerCell(layer, imageSize, y, x);
  if (head >= 0 && head < layer.heads) return softmax(cellLogits(logits, layer, numClasses, head, row, col));
  const mean = new Array(numClasses).fill(0);
  for (let h = 0; h < layer.heads; h++) {
    softmax(cellLogits(logits, layer, numClasses, h, row, col)).forEach((p, k) => { mean[k] += p / layer.heads; });
  }
  return mean;
}

/** (h·w) class ids: the class each cell's query matches best (attention_argmax). */
export function argmaxMap(logits, layer, numClasses, head) {
  const plane = layer.size * layer.size;
  const heads = head >= 0 && head < layer.heads ? [head] : Array.from({ length: layer.heads }, (_, h) => h);
  const out = new Uint8Array(plane);
  for (let i = 0; i < plane; i++) {
    let best = -Infinity;
    for (let k = 0; k < numClasses; k++) {
      let score = 0;
      for (const h of heads) score += logits[(h * numClasses + k) * plane + i];
      score /= heads.length; // the head average, as the logits' mean over heads
      if (score > best) { best = score; out[i] = k; } // the first maximum wins, as torch.argmax
    }
  }
  return out;
}
