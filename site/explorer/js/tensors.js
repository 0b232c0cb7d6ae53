// Conversions between what the page holds (8-bit pixels, class ids) and what the graphs take
// (float32 tensors), written to match ca2sis_lib: make_item's x / 127.5 - 1 for images,
// labels_to_one_hot for masks, viz.figures.to_rgb for drawing outputs.

/** (H·W·3) uint8 RGB, row-major -> (1, 3, H, W) float32 in [-1, 1]. */
export function imageTensorData(rgb, size) {
  const plane = size * size;
  const out = new Float32Array(3 * plane);
  for (let i = 0; i < plane; i++) {
    for (let c = 0; c < 3; c++) out[c * plane + i] = rgb[3 * i + c] / 127.5 - 1;
  }
  return out;
}

/** (H·W) class ids -> (1, K, H, W) float32 one-hot. */
export function oneHotData(labels, numClasses) {
  const plane = labels.length;
  const out = new Float32Array(numClasses * plane);
  for (let i = 0; i < plane; i++) out[labels[i] * plane + i] = 1;
  return out;
}

/** (1, 3, H, W) float32 in [-1, 1] -> ImageData (clamped to [0, 1], then 8 bits). */
export function imageDataFromTensor(data, size) {
  const plane = size * size;
  const pixels = new ImageData(size, size);
  for (let i = 0; i < plane; i++) {
    for (let c = 0; c < 3; c++) {
      const v = Math.min(1, Math.max(0, (data[c * plane + i] + 1) / 2));
      pixels.data[4 * i + c] = Math.round(v * 255);
    }
    pixels.data[4 * i + 3] = 255;
  }
  return pixels;
}

/** Class ids (h·w) -> ImageData in the palette's colours. */
export function imageDataFromLabels(labels, size, palette) {
  const pixels = new ImageData(size, size);
  for (let i = 0; i < size * size; i++) {
    const colour = palette[labels[i]];
    pixels.data.set(colour, 4 * i);
    pixels.data[4 * i + 3] = 255;
  }
  return pixels;
}

/** (H·W·3) uint8 RGB -> ImageData. */
export function imageDataFromRGB(rgb, size) {
  const pixels = new ImageData(size, size);
  for (let i = 0; i < size * size; i++) {
    pixels.data.set(rgb.subarray(3 * i, 3 * i + 3), 4 * i);
    pixels.data[4 * i + 3] = 255;
  }
  return pixels;
}

/** Base64 text -> Uint8Array (how samples.json carries pixels). */
export function decodeBytes(text) {
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}
