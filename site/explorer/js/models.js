// The exported graphs (models/manifest.json, written by ca2sis_lib.explorer.export) under
// onnxruntime-web's WebAssembly backend. Every file comes from this site's own folder.

import * as ort from "../ort/ort.wasm.min.mjs";

ort.env.wasm.wasmPaths = new URL("../ort/", import.meta.url).href;
ort.env.wasm.numThreads = 1; // threads need cross-origin isolation, which a plain static host does not give
ort.env.logLevel = "error";

/** Fetch a file of this site, counting its bytes into ``counter.bytes``. */
async function fetchBytes(url, counter) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  const bytes = new Uint8Array(await response.arrayBuffer());
  counter.bytes += bytes.length;
  return bytes;
}

/** One graph: its session and the time of its last run. */
class Graph {
  constructor(session, spec) {
    this.session = session;
    this.spec = spec;
    this.lastMs = 0;
    this.runs = 0;
  }

  /** feeds: name -> [Float32Array, dims]; returns name -> Float32Array. */
  async run(feeds) {
    const tensors = {};
    for (const [name, [data, dims]] of Object.entries(feeds)) tensors[name] = new ort.Tensor("float32", data, dims);
    const start = performance.now();
    const results = await this.session.run(tensors);
    this.lastMs = performance.now() - start;
    this.runs++;
    const out = {};
    for (const name of this.spec.outputs) out[name] = results[name].data;
    return out;
  }
}

/** A model of the manifest (``ca2sis`` or ``sean``): its graphs by name, and what the page needs of its config. */
export class Model {
  constructor(key, entry, graphs) {
    this.key = key;
    this.entry = entry;
    this.graphs = graphs;
    this.size = entry.image_size;
    this.numClasses = entry.num_classes;
    this.layers = entry.layers || [];
  }

  static async load(base, key, entry, counter) {
    const specs = Object.entries(entry.graphs);
    const files = await Promise.all(specs.map(([, spec]) => fetchBytes(new URL(spec.file, base), counter)));
    const graphs = {};
    for (const [i, [name, spec]] of specs.entries()) { // one WebAssembly thread: sessions one after another
      const session = await ort.InferenceSession.create(files[i], { executionProviders: ["wasm"], graphOptimizationLevel: "all" });
      graphs[name] = new Graph(session, spec);
    }
    return new Model(key, entry, graphs);
  }

  get isCrossAttention() {
    return "mask_embedder" in this.graphs;
  }

  /** image (1, 3, H, W) and one-hot (1, K, H, W) -> styles (1, K, D) as a Float32Array. */
  async encodeStyle(image, oneHot) {
    const s = this.size;
    const out = await this.graphs.style_encoder.run({ image: [image, [1, 3, s, s]], one_hot: [oneHot, [1, this.numClasses, s, s]] });
    return out.styles;
  }

  /** one-hot (1, K, H, W) -> shape tokens (1, K', L) (CA²-SIS). */
  async embedMask(oneHot) {
    const s = this.size;
    return (await this.graphs.mask_embedder.run({ one_hot: [oneHot, [1, this.numClasses, s, s]] })).tokens;
  }

  /** CA²-SIS: (tokens, styles) -> {image, <layer>: logits}; SEAN: (one-hot, styles) -> {image}. */
  async decode(layout, styles) {
    const s = this.size;
    const k = this.numClasses;
    const d = this.entry.style_code_dim;
    if (this.isCrossAttention) {
      const e = this.entry;
      return this.graphs.decoder.run({ tokens: [layout, [1, e.embed_classes, e.token_length]], styles: [styles, [1, k, d]] });
    }
    return this.graphs.decoder.run({ one_hot: [layout, [1, k, s, s]], styles: [styles, [1, k, d]] });
  }
}

export async function loadManifest(base) {
  const response = await fetch(new URL("manifest.json", base));
  if (!response.ok) throw new Error(`models/manifest.json: HTTP ${response.status}`);
  return response.json();
}
