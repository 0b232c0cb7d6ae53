// The explorer: state, the order in which the graphs run, and the wiring of every control.
//
//   pick a face      -> its style codes (style encoder, once per face and model), its map
//   paint the map    -> mask embedder + decoder (CA²-SIS), decoder (SEAN)        debounced
//   style edit       -> decoder only (rows of the style codes swapped)
//   shape-token edit -> decoder only (rows of the tokens swapped); SEAN: a composed mask
//   hover a pixel    -> nothing runs: the bars and the argmax map read the kept logits
//   compare (toggle) -> the SEAN-style graphs are fetched, once, when first asked for; while the
//                       comparison is on, SEAN runs after CA²-SIS with every change
//
// A page load downloads the CA²-SIS graphs only (the issue's ≤ 8 MB model); the baseline is extra.
// window.explorer exposes the state and timings to the page's tests and benchmark.

import { argmaxMap, layerCell, pixelDistribution } from "./attention.js";
import { drawBars, drawMarker, drawPixels } from "./draw.js";
import { composeMasks, LabelMap } from "./masks.js";
import { loadManifest, Model } from "./models.js";
import {
  decodeBytes, imageDataFromLabels, imageDataFromRGB, imageDataFromTensor, imageTensorData, oneHotData,
} from "./tensors.js";

const PAINT_DEBOUNCE_MS = 150;
const $ = (id) => document.getElementById(id);

const state = {
  classes: [], palettes: {}, paletteName: "course", size: 64,
  faces: [], face: 0, map: null,
  brush: { cls: 1, size: 3, eraser: false },
  layer: "", head: -1, pixel: { y: 32, x: 32 },
  styleEdits: [], shapeEdits: [], // {cls, from}: at most one of each kind per class
  models: {}, // "ca2sis", "sean" once loaded
  compare: false, // the SEAN-style baseline side by side (its graphs are loaded when first turned on)
  results: { ca2sis: null, sean: null },
};
const caches = { styles: { ca2sis: new Map(), sean: new Map() }, tokens: new Map() };
const timings = { decoder: [], mask_embedder: [], style_encoder: [], sean_decoder: [], sean_style_encoder: [] };
const explorer = {
  state, timings, ready: false, interactiveMs: null, modelBytes: { ca2sis: 0, sean: 0 }, error: null,
  runs: { ca2sis: 0, sean: 0 }, hoverRedraws: 0, timeline: [], // [step, ms since navigation] of the start
  seanAskedMs: null, seanReadyMs: null, // the comparison first turned on; its first SEAN face drawn
};
const site = { base: null, manifest: null, seanLoading: null }; // where the graphs are; the SEAN load, once asked
const mark = (step) => explorer.timeline.push([step, performance.now()]);
window.explorer = explorer;

// -- small helpers ----------------------------------------------------------------------------
const palette = () => state.palettes[state.paletteName];
const model = () => state.models.ca2sis;
const faceName = (i) => state.faces[i].name;
const layerSpec = () => model().layers.find((l) => l.name === state.layer);
const comparing = () => state.compare && Boolean(state.models.sean);
const megabytes = (bytes) => `${(bytes / 1e6).toFixed(1)} MB`;
const graphBytes = (key) => Object.values(site.manifest.models[key].graphs).reduce((sum, g) => sum + g.bytes, 0);

function setStatus(id, text, busy) {
  const el = $(id);
  el.textContent = text;
  el.dataset.busy = busy ? "true" : "false";
}

function say(text) { // a message the student should read (and a screen reader announces)
  $("message").textContent = text;
}

// -- the computation --------------------------------------------------------------------------
async function stylesOf(key, face) {
  const cache = caches.styles[key];
  if (!cache.has(face)) {
    const m = state.models[key];
    const f = state.faces[face];
    cache.set(face, await m.encodeStyle(imageTensorData(f.image, state.size), oneHotData(f.labels, m.numClasses)));
    timings[key === "sean" ? "sean_style_encoder" : "style_encoder"].push(m.graphs.style_encoder.lastMs);
  }
  return cache.get(face);
}

async function tokensOf(face) { // the shape tokens of a face's own map (for shape-token edits)
  if (!caches.tokens.has(face)) {
    caches.tokens.set(face, await model().embedMask(oneHotData(state.faces[face].labels, model().numClasses)));
  }
  return caches.tokens.get(face);
}

/** The face's style codes with the edited classes' rows taken from other faces. */
async function editedStyles(key, job) {
  const styles = (await stylesOf(key, job.face)).slice();
  const d = state.models[key].entry.style_code_dim;
  for (const e of job.styleEdits) {
    styles.set((await stylesOf(key, e.from)).subarray(e.cls * d, (e.cls + 1) * d), e.cls * d);
  }
  return styles;
}

async function runCA2SIS(job) {
  const m = model();
  const styles = await editedStyles("ca2sis", job);
  const tokens = await m.embedMask(oneHotData(job.labels, m.numClasses));
  timings.mask_embedder.push(m.graphs.mask_embedder.lastMs);
  const shift = m.entry.exclude_background ? 1 : 0;
  const length = m.entry.token_length;
  for (const e of job.shapeEdits) { // row cls - 1: the background has no token
    const row = e.cls - shift;
    tokens.set((await tokensOf(e.from)).subarray(row * length, (row + 1) * length), row * length);
  }
  const out = await m.decode(tokens, styles);
  timings.decoder.push(m.graphs.decoder.lastMs);
  const logits = Object.fromEntries(m.layers.map((l) => [l.name, out[l.name]]));
  state.results.ca2sis = { image: out.image, logits, labels: job.labels, styles, tokens, job };
  explorer.runs.ca2sis++;
}

async function runSEAN(job) {
  const m = state.models.sean;
  const styles = await editedStyles("sean", job);
  let mask = job.labels;
  for (const e of job.shapeEdits) mask = composeMasks(mask, state.faces[e.from].labels, [e.cls], state.size);
  const out = await m.decode(oneHotData(mask, m.numClasses), styles);
  timings.sean_decoder.push(m.graphs.decoder.lastMs);
  state.results.sean = { image: out.image, mask, job };
  explorer.runs.sean++;
}

function currentJob() {
  const job = {
    labels: state.map.labels.slice(), version: state.map.version, face: state.face,
    styleEdits: state.styleEdits.map((e) => ({ ...e })), shapeEdits: state.shapeEdits.map((e) => ({ ...e })),
  };
  job.key = JSON.stringify([job.version, job.face, job.styleEdits, job.shapeEdits]); // what the output depends on
  return job;
}

const upToDate = (key, job) => state.results[key] !== null && state.results[key].job.key === job.key;

// One run at a time; a change during a run schedules one more run with the newest state.
const scheduler = { dirty: false, running: false, timer: null, waiters: [] };

function schedule(delay = 0) {
  scheduler.dirty = true;
  setStatus("ca2sis-status", "computing…", true);
  if (comparing()) setStatus("sean-status", "computing…", true);
  clearTimeout(scheduler.timer);
  scheduler.timer = setTimeout(() => { scheduler.timer = null; pump(); }, delay);
}

async function pump() {
  if (scheduler.running) return;
  scheduler.running = true;
  try {
    while (scheduler.dirty) {
      scheduler.dirty = false;
      const job = currentJob();
      if (!upToDate("ca2sis", job)) { // e.g. the comparison just turned on: CA²-SIS's face is current already
        await runCA2SIS(job);
        drawCA2SIS();
        drawAttention();
      }
      const g = model().graphs;
      setStatus("ca2sis-status", `up to date · decoder ${g.decoder.lastMs.toFixed(0)} ms, mask embedder `
        + `${g.mask_embedder.lastMs.toFixed(0)} ms`, scheduler.dirty);
      if (comparing() && !scheduler.dirty) {
        if (!upToDate("sean", job)) {
          await runSEAN(job);
          drawSEAN();
          if (explorer.seanReadyMs === null) explorer.seanReadyMs = performance.now();
        }
        if (state.compare) { // turned off meanwhile: its "off" status stays
          setStatus("sean-status", `up to date · decoder ${state.models.sean.graphs.decoder.lastMs.toFixed(0)} ms`,
            scheduler.dirty);
        }
      }
    }
  } catch (error) {
    fail(error);
  } finally {
    scheduler.running = false;
    if (!scheduler.dirty && !scheduler.timer) scheduler.waiters.splice(0).forEach((resolve) => resolve());
  }
}

/** Resolves once every change so far has been computed and drawn. */
explorer.settled = () => new Promise((resolve) => {
  if (!scheduler.dirty && !scheduler.running && !scheduler.timer) resolve();
  else scheduler.waiters.push(resolve);
});

/** Time ``n`` CA²-SIS decoder passes on the current tokens and styles (the benchmark's figure). */
explorer.timeDecoder = async (n = 10) => {
  await explorer.settled(); // one run at a time on a session
  const { tokens, styles } = state.results.ca2sis;
  const times = [];
  for (let i = 0; i < n; i++) {
    await model().decode(tokens, styles);
    times.push(model().graphs.decoder.lastMs);
  }
  return times;
};

explorer.snapshot = () => ({
  compare: state.compare, face: state.face, labels: Array.from(state.map.labels), layer: state.layer, head: state.head,
  styleEdits: state.styleEdits, shapeEdits: state.shapeEdits,
  ca2sis: state.results.ca2sis && { image: Array.from(state.results.ca2sis.image), labels: Array.from(state.results.ca2sis.labels) },
  sean: state.results.sean && { image: Array.from(state.results.sean.image), mask: Array.from(state.results.sean.mask) },
});

function fail(error) {
  explorer.error = String(error && error.stack ? error.stack : error);
  setStatus("load-status", `Something failed: ${error.message || error}`, false);
  console.error(error);
}

// -- drawing ----------------------------------------------------------------------------------
function markPixel(canvas, cells) {
  const { y, x } = state.pixel;
  const [row, col] = cells === state.size ? [y, x] : layerCell({ size: cells }, state.size, y, x);
  drawMarker(canvas, state.size, y, x, cells, row, col);
}

function drawMap() {
  drawPixels($("map"), imageDataFromLabels(state.map.labels, state.size, palette()));
  if (model()) markPixel($("map"), layerSpec().size);
}

function drawCA2SIS() {
  const r = state.results.ca2sis;
  if (!r) return;
  drawPixels($("ca2sis-image"), imageDataFromTensor(r.image, state.size));
  markPixel($("ca2sis-image"), layerSpec().size);
}

function drawSEAN() {
  const r = state.results.sean;
  if (!r) return;
  drawPixels($("sean-image"), imageDataFromTensor(r.image, state.size));
  drawPixels($("sean-mask"), imageDataFromLabels(r.mask, state.size, palette()));
}

/** The argmax map and the bars of the chosen layer and head, from the kept logits: no model runs. */
function drawAttention() {
  const r = state.results.ca2sis;
  if (!r) return;
  const m = model();
  const layer = layerSpec();
  const k = m.numClasses;
  const argmax = argmaxMap(r.logits[layer.name], layer, k, state.head);
  drawPixels($("argmax"), imageDataFromLabels(argmax, layer.size, palette()));
  markPixel($("argmax"), layer.size);
  drawPixels($("argmax-mask"), imageDataFromLabels(r.labels, state.size, palette()));
  markPixel($("argmax-mask"), layer.size);
  const { y, x } = state.pixel;
  const distributions = Object.fromEntries(m.layers.map((l) => [l.name,
    pixelDistribution(r.logits[l.name], l, k, state.size, y, x, state.head)]));
  const truth = r.labels[y * state.size + x];
  const heads = state.head < 0 ? "mean of heads" : `head ${state.head}`;
  drawBars($("bars"), distributions, m.layers, state.classes, palette(), truth, layer.name,
    `Pixel (${y}, ${x}): attention over classes per layer (${heads})`);
  const [row, col] = layerCell(layer, state.size, y, x);
  const chosen = argmax[row * layer.size + col];
  const top = distributions[layer.name].map((p, c) => [p, c]).sort((a, b) => b[0] - a[0]).slice(0, 3);
  const readout = $("readout");
  readout.textContent = `Pixel (${y}, ${x}) is '${state.classes[truth]}' in the mask. At ${layer.name} (cell ${row}, ${col} `
    + `of ${layer.size}×${layer.size}, ${heads}) its argmax is '${state.classes[chosen]}'; its largest weights: `
    + top.map(([p, c]) => `${state.classes[c]} ${p.toFixed(2)}`).join(", ") + ".";
  const weights = Object.fromEntries(m.layers.map((l) => [l.name, distributions[l.name].map((p) => +p.toFixed(6))]));
  Object.assign(readout.dataset, {
    y, x, layer: layer.name, head: state.head, argmaxClass: chosen, maskClass: truth, weights: JSON.stringify(weights),
  });
  $("bars").setAttribute("aria-label", readout.textContent);
  explorer.hoverRedraws++;
}

function redrawMarked() { // the pixel or the layer changed: markers, bars and argmax only
  drawMap();
  drawCA2SIS();
  drawAttention();
}

// -- controls ---------------------------------------------------------------------------------
function setPixel(y, x) {
  if (y === state.pixel.y && x === state.pixel.x) return;
  state.pixel = { y, x };
  redrawMarked();
}

/** The image pixel under a pointer event, clamped to the image (a stroke may leave the canvas). */
function pixelAt(canvas, event) {
  const box = canvas.getBoundingClientRect();
  const at = (offset, size) => Math.max(0, Math.min(state.size - 1, Math.floor((offset / size) * state.size)));
  return [at(event.clientY - box.top - canvas.clientTop, canvas.clientHeight),
    at(event.clientX - box.left - canvas.clientLeft, canvas.clientWidth)];
}

function paintClass() { return state.brush.eraser ? 0 : state.brush.cls; }

function wireMap() {
  const canvas = $("map");
  let last = null;
  canvas.addEventListener("pointerdown", (event) => {
    if (!explorer.ready || event.button > 0) return;
    canvas.setPointerCapture(event.pointerId);
    const [y, x] = pixelAt(canvas, event);
    state.map.remember();
    last = [y, x];
    state.map.dab(y, x, paintClass(), state.brush.size);
    state.pixel = { y, x };
    drawMap();
    schedule(PAINT_DEBOUNCE_MS);
  });
  canvas.addEventListener("pointermove", (event) => {
    if (!explorer.ready) return;
    const [y, x] = pixelAt(canvas, event);
    if (last) {
      if (state.map.line(last[0], last[1], y, x, paintClass(), state.brush.size)) schedule(PAINT_DEBOUNCE_MS);
      last = [y, x];
      state.pixel = { y, x };
      drawMap();
    } else {
      setPixel(y, x); // hovering: the attention view follows, nothing runs
    }
  });
  const end = () => { if (last) { last = null; schedule(0); } };
  canvas.addEventListener("pointerup", end);
  canvas.addEventListener("pointercancel", end);
  canvas.addEventListener("keydown", (event) => {
    if (!explorer.ready) return;
    if (event.key === " " || event.key === "Enter") {
      event.preventDefault();
      state.map.remember();
      state.map.dab(state.pixel.y, state.pixel.x, paintClass(), state.brush.size);
      drawMap();
      schedule(PAINT_DEBOUNCE_MS);
    } else {
      moveWithKeys(event);
    }
  });
}

function moveWithKeys(event) {
  const step = event.shiftKey ? 4 : 1;
  const moves = { ArrowUp: [-step, 0], ArrowDown: [step, 0], ArrowLeft: [0, -step], ArrowRight: [0, step] };
  if (!(event.key in moves)) return;
  event.preventDefault();
  const [dy, dx] = moves[event.key];
  const clamp = (v) => Math.max(0, Math.min(state.size - 1, v));
  setPixel(clamp(state.pixel.y + dy), clamp(state.pixel.x + dx));
}

function wireInspectable(canvas) { // hover or tap a pixel; arrow keys when focused
  const pick = (event) => { if (explorer.ready) setPixel(...pixelAt(canvas, event)); };
  canvas.addEventListener("pointermove", pick);
  canvas.addEventListener("pointerdown", pick);
  canvas.addEventListener("keydown", (event) => { if (explorer.ready) moveWithKeys(event); });
}

function undo() {
  if (state.map.undo()) {
    drawMap();
    schedule(0);
    say("Undone.");
  } else {
    say("Nothing to undo.");
  }
}

function buildSwatches() {
  const box = $("swatches");
  box.replaceChildren();
  state.classes.forEach((name, c) => {
    const label = document.createElement("label");
    label.className = "swatch";
    const input = document.createElement("input");
    Object.assign(input, { type: "radio", name: "brush-class", value: String(c), checked: c === state.brush.cls });
    input.addEventListener("change", () => { state.brush.cls = c; state.brush.eraser = false; $("eraser").checked = false; });
    const chip = document.createElement("span");
    chip.className = "chip";
    chip.style.background = `rgb(${palette()[c].join(",")})`;
    label.append(input, chip, document.createTextNode(name));
    box.append(label);
  });
}

function buildFaces() {
  const box = $("faces");
  box.replaceChildren();
  state.faces.forEach((face, i) => {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "face";
    button.setAttribute("aria-pressed", String(i === state.face));
    button.setAttribute("aria-label", `${face.name}: use its styles and its map`);
    button.title = face.name;
    const canvas = document.createElement("canvas");
    canvas.width = canvas.height = state.size;
    drawPixels(canvas, imageDataFromRGB(face.image, state.size));
    button.append(canvas);
    button.addEventListener("click", () => pickFace(i));
    box.append(button);
  });
  for (const id of ["edit-from"]) {
    const select = $(id);
    select.replaceChildren(...state.faces.map((face, i) => new Option(face.name, String(i))));
    select.value = "1";
  }
  $("edit-class").replaceChildren(...state.classes.map((name, c) => new Option(`${c}: ${name}`, String(c))));
  $("edit-class").value = String(state.classes.indexOf("hair") >= 0 ? state.classes.indexOf("hair") : 1);
}

function pickFace(i) {
  state.face = i;
  state.map.set(state.faces[i].labels);
  state.styleEdits = [];
  state.shapeEdits = [];
  document.querySelectorAll("#faces .face").forEach((b, j) => b.setAttribute("aria-pressed", String(j === i)));
  $("style-source").textContent = faceName(i);
  renderEdits();
  drawMap();
  schedule(0);
  say(`${faceName(i)}: its styles, its map; edits cleared.`);
}

function addEdit(kind) {
  const cls = Number($("edit-class").value);
  const from = Number($("edit-from").value);
  const name = state.classes[cls];
  if (!state.faces[from].labels.includes(cls)) { // as ca2sis_lib.editing: an absent class has nothing to give
    say(`Refused: ${faceName(from)} shows no ${name}, so it has no ${kind === "style" ? "style code" : "shape token"} `
      + `for it to give (the library refuses this edit too).`);
    return;
  }
  if (kind === "shape" && cls === 0 && model().entry.exclude_background) {
    say("Refused: the background has no shape token in this model (it is left out of the mask embedder).");
    return;
  }
  const list = kind === "style" ? state.styleEdits : state.shapeEdits;
  const kept = list.filter((e) => e.cls !== cls);
  kept.push({ cls, from });
  if (kind === "style") state.styleEdits = kept; else state.shapeEdits = kept;
  renderEdits();
  schedule(0);
  say(`${name}: ${kind === "style" ? "style code" : "shape token"} taken from ${faceName(from)}.`);
}

function renderEdits() {
  const list = $("edits");
  list.replaceChildren();
  const items = [...state.styleEdits.map((e) => ["style", e]), ...state.shapeEdits.map((e) => ["shape", e])];
  for (const [kind, e] of items) {
    const li = document.createElement("li");
    li.textContent = `${state.classes[e.cls]}: ${kind === "style" ? "style code" : "shape token"} from ${faceName(e.from)} `;
    const remove = document.createElement("button");
    remove.type = "button";
    remove.textContent = "remove";
    remove.setAttribute("aria-label", `remove the ${state.classes[e.cls]} ${kind} edit`);
    remove.addEventListener("click", () => {
      if (kind === "style") state.styleEdits = state.styleEdits.filter((x) => x !== e);
      else state.shapeEdits = state.shapeEdits.filter((x) => x !== e);
      renderEdits();
      schedule(0);
    });
    li.append(remove);
    list.append(li);
  }
  $("no-edits").hidden = items.length > 0;
}

function buildLayerControls() {
  const layers = model().layers;
  $("layer").replaceChildren(...layers.map((l) => new Option(
    `${l.name} (${l.size}×${l.size}, ${l.heads} heads${l.self_attention ? ", after self-attention" : ""})`, l.name)));
  $("layer").value = state.layer;
  fillHeads();
}

function fillHeads() {
  const heads = layerSpec().heads;
  if (state.head >= heads) state.head = -1; // a head the new layer lacks: the mean, as the notebook inspector
  $("head").replaceChildren(new Option("mean of heads", "-1"),
    ...Array.from({ length: heads }, (_, h) => new Option(`head ${h}`, String(h))));
  $("head").value = String(state.head);
}

function wireControls() {
  wireMap();
  for (const id of ["ca2sis-image", "argmax", "argmax-mask"]) wireInspectable($(id));
  $("undo").addEventListener("click", undo);
  $("reset-map").addEventListener("click", () => { state.map.set(state.faces[state.face].labels); drawMap(); schedule(0); });
  $("blank-map").addEventListener("click", () => {
    state.map.set(new Uint8Array(state.size * state.size));
    drawMap();
    schedule(0);
    say(`A blank map (all background). Paint the parts; the styles are still ${faceName(state.face)}'s.`);
  });
  $("eraser").addEventListener("change", (event) => { state.brush.eraser = event.target.checked; });
  document.querySelectorAll("input[name=brush-size]").forEach((input) => {
    input.addEventListener("change", () => { state.brush.size = Number(input.value); });
  });
  $("layer").addEventListener("change", (event) => { state.layer = event.target.value; fillHeads(); redrawMarked(); });
  $("head").addEventListener("change", (event) => { state.head = Number(event.target.value); redrawMarked(); });
  $("palette").addEventListener("change", (event) => {
    state.paletteName = event.target.value;
    buildSwatches();
    drawMap();
    drawAttention();
    drawSEAN();
  });
  $("compare").addEventListener("click", () => setCompare(!state.compare));
  $("take-style").addEventListener("click", () => addEdit("style"));
  $("take-shape").addEventListener("click", () => addEdit("shape"));
  $("clear-edits").addEventListener("click", () => {
    state.styleEdits = [];
    state.shapeEdits = [];
    renderEdits();
    schedule(0);
  });
  document.addEventListener("keydown", (event) => {
    if ((event.ctrlKey || event.metaKey) && event.key.toLowerCase() === "z" && !event.target.closest("select")) {
      event.preventDefault();
      undo();
    }
  });
}

// -- the SEAN-style baseline, on demand -------------------------------------------------------------
/** Its graphs, fetched and compiled on the first request only; a failed load may be asked for again. */
function loadSEAN() {
  if (!site.seanLoading) {
    const counter = { bytes: 0 };
    site.seanLoading = Model.load(site.base, "sean", site.manifest.models.sean, counter).then((sean) => {
      state.models.sean = sean;
      explorer.modelBytes.sean = counter.bytes;
      mark("SEAN-style graphs loaded");
      setStatus("load-status", `Ready: CA²-SIS (${megabytes(explorer.modelBytes.ca2sis)}) and the SEAN-style baseline `
        + `(${megabytes(counter.bytes)}) loaded, running in this browser.`, false);
      if (!state.compare) showSEANOff();
    }, (error) => { site.seanLoading = null; throw error; });
  }
  return site.seanLoading;
}

function showSEANOff() {
  setStatus("sean-status", state.models.sean ? "off: loaded, but not run while the comparison is off."
    : site.seanLoading ? "off: its download finishes, then waits." : "off: the page has not downloaded it.", false);
}

/** Turn the side-by-side comparison on (its graphs are loaded the first time) or off (SEAN stops running). */
async function setCompare(on) {
  state.compare = on;
  $("compare").setAttribute("aria-pressed", String(on));
  $("sean-view").hidden = !on;
  if (!on) {
    showSEANOff();
    return;
  }
  if (explorer.seanAskedMs === null) explorer.seanAskedMs = performance.now();
  if (!state.models.sean) setStatus("sean-status", `loading the baseline (${megabytes(graphBytes("sean"))})…`, true);
  try {
    await loadSEAN();
  } catch (error) {
    setCompare(false);
    setStatus("sean-status", "The baseline could not be loaded: turn the comparison on to try again.", false);
    fail(error);
    return;
  }
  if (state.compare) schedule(0); // still wanted once its graphs are in
}

function enable(on) {
  document.querySelectorAll("[data-needs-model]").forEach((el) => { el.disabled = !on; });
}

// -- start ------------------------------------------------------------------------------------
async function start() {
  enable(false);
  try {
    setStatus("load-status", "Loading the toy faces and the CA²-SIS model…", true);
    site.base = new URL("models/", location.href);
    site.manifest = await loadManifest(site.base);
    $("sean-size").textContent = `(${megabytes(graphBytes("sean"))})`;
    const counter = { bytes: 0 };
    const [samples, ca2sis] = await Promise.all([ // the faces arrive while the runtime starts
      fetch("samples.json").then((r) => { if (!r.ok) throw new Error(`samples.json: HTTP ${r.status}`); return r.json(); }),
      Model.load(site.base, "ca2sis", site.manifest.models.ca2sis, counter),
    ]);
    mark("faces and CA²-SIS graphs loaded");
    state.models.ca2sis = ca2sis;
    Object.assign(state, { classes: samples.classes, palettes: samples.palettes, size: samples.size });
    state.faces = samples.faces.map((f) => ({ name: f.name, image: decodeBytes(f.image), labels: decodeBytes(f.labels) }));
    state.map = new LabelMap(state.size);
    state.map.labels = state.faces[0].labels.slice();
    explorer.modelBytes.ca2sis = counter.bytes;
    const layers = model().layers;
    state.layer = layers[Math.floor(layers.length / 2)].name;
    buildSwatches();
    buildFaces();
    buildLayerControls();
    wireControls();
    $("style-source").textContent = faceName(state.face);
    drawMap();
    schedule(0);
    await explorer.settled();
    mark("first face drawn");
    enable(true);
    explorer.ready = true;
    explorer.interactiveMs = performance.now();
    setStatus("load-status", `Ready: CA²-SIS loaded (${megabytes(counter.bytes)}) in `
      + `${(explorer.interactiveMs / 1000).toFixed(1)} s, running in this browser. The SEAN-style baseline is `
      + "loaded only if you turn the comparison on (panel 3).", false);
  } catch (error) {
    fail(error);
  }
}

start();
