// The label map the student paints (with undo), and the composed mask a SPADE-family shape edit
// needs: ca2sis_lib.editing.compose_masks, step for step.

const MAX_UNDO = 60;

export class LabelMap {
  constructor(size) {
    this.size = size;
    this.labels = new Uint8Array(size * size);
    this.history = [];
    this.version = 0; // bumped on every change: what the page has computed is keyed on it
  }

  /** Keep the current map for undo; call before a change (a stroke, a reset). */
  remember() {
    this.history.push(this.labels.slice());
    if (this.history.length > MAX_UNDO) this.history.shift();
  }

  set(labels) {
    this.remember();
    this.labels = Uint8Array.from(labels);
    this.version++;
  }

  undo() {
    if (!this.history.length) return false;
    this.labels = this.history.pop();
    this.version++;
    return true;
  }

  /** A disc of ``size`` pixels across centred on (y, x); returns whether any pixel changed. */
  dab(y, x, cls, size) {
    const r = size / 2;
    const reach = Math.floor((size - 1) / 2 + 0.5);
    let changed = false;
    for (let dy = -reach; dy <= reach; dy++) {
      for (let dx = -reach; dx <= reach; dx++) {
        if (size > 1 && dy * dy + dx * dx > r * r) continue;
        const yy = y + dy;
        const xx = x + dx;
        if (yy < 0 || xx < 0 || yy >= this.size || xx >= this.size) continue;
        const i = yy * this.size + xx;
        if (this.labels[i] !== cls) { this.labels[i] = cls; changed = true; }
      }
    }
    if (changed) this.version++;
    return changed;
  }

  /** Dabs every pixel of the straight line from (y0, x0) to (y1, x1), so a fast stroke has no gaps. */
  line(y0, x0, y1, x1, cls, size) {
    const steps = Math.max(Math.abs(y1 - y0), Math.abs(x1 - x0), 1);
    let changed = false;
    for (let s = 0; s <= steps; s++) {
      const y = Math.round(y0 + ((y1 - y0) * s) / steps);
      const x = Math.round(x0 + ((x1 - x0) * s) / steps);
      changed = this.dab(y, x, cls, size) || changed;
    }
    return changed;
  }
}

/** B's pixels of ``classes`` painted over A; pixels where A had one of them and B has not are holes,
 *  filled by the nearest remaining class of A, grown one pixel at a time over the 3×3 neighbourhood
 *  (lowest class id winning ties). Throws when a hole cannot be filled. */
export function composeMasks(labelsA, labelsB, classes, size, maxIterations = 256) {
  const edited = new Set(classes);
  const out = new Int16Array(labelsA.length);
  for (let i = 0; i < out.length; i++) {
    out[i] = edited.has(labelsA[i]) ? -1 : labelsA[i];
    if (edited.has(labelsB[i])) out[i] = labelsB[i];
  }
  const BIG = 32767;
  for (let iteration = 0; iteration < maxIterations; iteration++) {
    const holes = [];
    for (let i = 0; i < out.length; i++) if (out[i] < 0) holes.push(i);
    if (!holes.length) break;
    const grown = [];
    for (const i of holes) {
      const y = Math.floor(i / size);
      const x = i % size;
      let best = BIG;
      for (let dy = -1; dy <= 1; dy++) {
        for (let dx = -1; dx <= 1; dx++) {
          const yy = y + dy;
          const xx = x + dx;
          if (yy < 0 || xx < 0 || yy >= size || xx >= size) continue;
          const v = out[yy * size + xx];
          if (v >= 0 && v < best) best = v;
        }
      }
      if (best < BIG) grown.push([i, best]);
    }
    for (const [i, v] of grown) out[i] = v; // all at once: one pixel of growth per iteration
  }
  if (out.some((v) => v < 0)) throw new Error("the composed mask has holes no class of this map can fill");
  return Uint8Array.from(out);
}
