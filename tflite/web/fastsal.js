// FastSal web demo: runs an exported FastSal .tflite with LiteRT.js (WASM CPU path) on an image or the
// webcam and draws the saliency map. Query parameters:
//   ?model=URL    the .tflite to load (default: fastsal.tflite beside this page)
//   ?threads=N    N > 1 uses the threaded WASM build (needs a cross-origin-isolated page: serve.py sends
//                 the COOP/COEP headers); default 1 thread.
// Test hooks (window): fastsalReady (a promise of the model info), fastsalRun(imageUrl, {withInput})
//   → {width, height, map: Array (raw model output, row-major H×W), outputName, outputDtype, inferenceMs,
//      frameMs, input?: Array (the RGB bytes fed to the model), imageWidth, imageHeight, center: [x, y],
//      crops: [{aspect, box: [x0, y0, x1, y1]}] (decisions.js, in pixels of the image)},
//   fastsalLoadModel(urlOrBytes, name).
import {loadAndCompile, loadLiteRt, Tensor} from '@litertjs/core';
import {attentionCenter, cropBoxes, parseAspect, probabilities} from './decisions.js';

const params = new URLSearchParams(location.search);
const WASM_DIR = new URL('./node_modules/@litertjs/core/wasm/', import.meta.url).href;
const DEFAULT_MODEL = new URL(params.get('model') || 'fastsal.tflite', location.href).href;
const PREFERRED_OUTPUTS = ['saliency_map', 'probability_map', 'logits'];

const $ = (id) => document.getElementById(id);
const statusLine = $('status');
const latencyLine = $('latency');

function setStatus(text, isError = false) {
  statusLine.textContent = text;
  statusLine.classList.toggle('error', isError);
}

// ------------------------------------------------------------------------------------------ runtime

let runtimePromise = null;

function runtime() {
  if (!runtimePromise) {
    const wanted = Math.max(1, Number.parseInt(params.get('threads') || '1', 10) || 1);
    const threads = wanted > 1 && self.crossOriginIsolated ? wanted : 1;
    if (wanted > 1 && threads === 1) console.warn('threads ignored: the page is not cross-origin isolated');
    runtimePromise = loadLiteRt(WASM_DIR, threads > 1 ? {threads: true} : {}).then(() => ({threads}));
  }
  return runtimePromise;
}

let current = null;  // the loaded model and what we know about its tensors

// Model runs and model swaps take turns (the webcam loop, a chosen image and the test hook may overlap).
let queue = Promise.resolve();
function exclusive(task) {
  const run = queue.then(task, task);
  queue = run.catch(() => {});
  return run;
}

const loadModel = (source, name) => exclusive(() => loadModelNow(source, name));

async function loadModelNow(source, name) {
  const {threads} = await runtime();
  const model = await loadAndCompile(source, {accelerator: 'wasm', cpuOptions: {numThreads: threads}});
  try {
    const inputs = model.getInputDetails();
    const outputs = model.getOutputDetails();
    if (inputs.length !== 1) throw new Error(`expected one input tensor, the model has ${inputs.length}`);
    const shape = Array.from(inputs[0].shape);
    if (shape.length !== 4 || shape[0] !== 1 || shape[3] !== 3) {
      throw new Error(`expected a [1, H, W, 3] RGB input with a fixed batch of 1, got [${shape}]`);
    }
    if (!['uint8', 'float32'].includes(inputs[0].dtype)) {
      throw new Error(`expected a uint8 or float32 input, got ${inputs[0].dtype}`);
    }
    let outputIndex = 0;
    for (const wanted of PREFERRED_OUTPUTS) {
      const found = outputs.findIndex((o) => o.name === wanted || o.name.endsWith(wanted));
      if (found >= 0) { outputIndex = found; break; }
    }
    const out = outputs[outputIndex];
    const outShape = Array.from(out.shape);
    if (outShape.length !== 4 || outShape[1] !== shape[1] || outShape[2] !== shape[2] || outShape[3] !== 1) {
      throw new Error(`expected a [1, ${shape[1]}, ${shape[2]}, 1] map output, got [${outShape}]`);
    }
    if (current) current.model.delete();
    current = {
      model, name, threads, height: shape[1], width: shape[2], inputDtype: inputs[0].dtype,
      outputIndex, outputName: out.name, outputDtype: out.dtype,
    };
  } catch (error) {
    model.delete();
    throw error;
  }
  const info = describe();
  $('model-name').textContent =
    `${name}: input ${info.width}×${info.height} ${info.inputDtype}, output ${info.outputName} ` +
    `(${info.outputDtype}), ${threads} thread${threads > 1 ? 's' : ''}`;
  return info;
}

function describe() {
  const {name, threads, height, width, inputDtype, outputName, outputDtype} = current;
  return {name, threads, height, width, inputDtype, outputName, outputDtype};
}

// ------------------------------------------------------------------------------------ pre / post

const inputCanvas = document.createElement('canvas');
const inputContext = inputCanvas.getContext('2d', {willReadFrequently: true});
const heatCanvas = document.createElement('canvas');
const heatContext = heatCanvas.getContext('2d');

// Stretches the source to the model input size on a canvas; returns the RGB bytes (row-major HWC).
function preprocess(source, width, height) {
  inputCanvas.width = width;
  inputCanvas.height = height;
  inputContext.imageSmoothingEnabled = true;
  inputContext.imageSmoothingQuality = 'high';
  inputContext.drawImage(source, 0, 0, width, height);
  const rgba = inputContext.getImageData(0, 0, width, height).data;
  const rgb = new Uint8Array(width * height * 3);
  for (let i = 0, j = 0; i < rgba.length; i += 4, j += 3) {
    rgb[j] = rgba[i];
    rgb[j + 1] = rgba[i + 1];
    rgb[j + 2] = rgba[i + 2];
  }
  return rgb;
}

async function infer(rgb) {
  const {model, width, height, inputDtype, outputIndex} = current;
  const input = new Tensor(inputDtype === 'uint8' ? rgb : Float32Array.from(rgb), [1, height, width, 3]);
  let outputs = [];
  try {
    const start = performance.now();
    outputs = await model.run([input]);
    const map = outputs[outputIndex].toTypedArray().slice();  // a copy that outlives the tensor
    return {map, inferenceMs: performance.now() - start};
  } finally {
    input.delete();
    for (const tensor of outputs) tensor.delete();
  }
}

// The raw output → display values in [0, 1] (uint8 map / 255; probability map and logits min–max).
function displayValues(map, normalise) {
  const values = new Float32Array(map.length);
  const scale = current.outputDtype === 'uint8' ? 1 / 255 : 1;
  let lo = Infinity, hi = -Infinity;
  for (let i = 0; i < map.length; i++) {
    const v = map[i] * scale;
    values[i] = v;
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  const stretch = normalise || !current.outputName.endsWith('saliency_map');
  if (stretch && hi > lo) {
    for (let i = 0; i < values.length; i++) values[i] = (values[i] - lo) / (hi - lo);
  }
  for (let i = 0; i < values.length; i++) values[i] = Math.min(1, Math.max(0, values[i]));
  return values;
}

const clamp01 = (x) => Math.min(1, Math.max(0, x));

// The classic jet colour map.
function jet(v) {
  return [clamp01(1.5 - Math.abs(4 * v - 3)), clamp01(1.5 - Math.abs(4 * v - 2)), clamp01(1.5 - Math.abs(4 * v - 1))];
}

const JET = Array.from({length: 256}, (_, i) => jet(i / 255).map((c) => Math.round(255 * c)));

function draw(source, sourceWidth, sourceHeight, map) {
  const {width, height} = current;
  const values = displayValues(map, $('normalise').checked);

  const gray = $('gray');
  gray.width = width;
  gray.height = height;
  const grayImage = new ImageData(width, height);
  heatCanvas.width = width;
  heatCanvas.height = height;
  const heatImage = new ImageData(width, height);
  for (let i = 0; i < values.length; i++) {
    const level = Math.round(values[i] * 255);
    const colour = JET[level];
    grayImage.data.set([level, level, level, 255], 4 * i);
    heatImage.data.set([colour[0], colour[1], colour[2], 255], 4 * i);
  }
  gray.getContext('2d').putImageData(grayImage, 0, 0);
  heatContext.putImageData(heatImage, 0, 0);

  // The overlay keeps the picture's aspect ratio (at most 640 px wide); the map is stretched back onto it.
  const overlay = $('overlay');
  const displayWidth = Math.min(640, sourceWidth);
  overlay.width = displayWidth;
  overlay.height = Math.max(1, Math.round(displayWidth * sourceHeight / sourceWidth));
  const context = overlay.getContext('2d');
  context.globalAlpha = 1;
  context.drawImage(source, 0, 0, overlay.width, overlay.height);
  context.globalAlpha = Number($('opacity').value);
  context.imageSmoothingEnabled = true;
  context.drawImage(heatCanvas, 0, 0, overlay.width, overlay.height);
  context.globalAlpha = 1;
  gray.style.width = `${overlay.width}px`;  // shown beside the overlay at the same size
  gray.style.height = `${overlay.height}px`;
}

// The output's kind by name, as fastsal_tf.predict.backends.head_kind.
function outputKind(name) {
  const lower = name.toLowerCase();
  if (lower.includes('prob')) return 'prob';
  if (lower.includes('logit')) return 'logits';
  return 'map';
}

// The attention centre and the crops (decisions.js) for the image, from the raw model output.
function decide(map, sourceWidth, sourceHeight) {
  const {width, height, outputName, outputDtype} = current;
  const scale = outputDtype === 'uint8' ? 1 / 255 : 1;
  const prob = probabilities(Array.from(map, (v) => v * scale), outputKind(outputName));
  const aspects = $('aspects').value.split(',').map(parseAspect);
  return {
    center: attentionCenter(prob, width, height, sourceWidth, sourceHeight),
    crops: cropBoxes(prob, width, height, sourceWidth, sourceHeight, aspects),
  };
}

const CROP_COLOURS = ['#00e5ff', '#ffea00', '#ff4081', '#76ff03', '#ff9100'];

// Draws the crop boxes and the centre on the marks canvas laid over the overlay (the toggle shows or hides it).
function drawDecisions({center, crops}, sourceWidth) {
  const overlay = $('overlay');
  const marks = $('marks');
  marks.width = overlay.width;
  marks.height = overlay.height;
  const s = overlay.width / sourceWidth;
  const context = marks.getContext('2d');
  context.clearRect(0, 0, marks.width, marks.height);
  context.lineWidth = 2;
  context.font = '12px system-ui, sans-serif';
  crops.forEach(({aspect, box: [x0, y0, x1, y1]}, i) => {
    context.strokeStyle = context.fillStyle = CROP_COLOURS[i % CROP_COLOURS.length];
    context.strokeRect(x0 * s + 1, y0 * s + 1, (x1 - x0) * s - 2, (y1 - y0) * s - 2);
    context.fillText(aspect, x0 * s + 4, y0 * s + 14 + 14 * i);
  });
  const [x, y] = center.map((v) => (v + 0.5) * s);
  context.strokeStyle = '#fff';
  context.beginPath();
  context.arc(x, y, 8, 0, 2 * Math.PI);
  context.moveTo(x - 14, y);
  context.lineTo(x + 14, y);
  context.moveTo(x, y - 14);
  context.lineTo(x, y + 14);
  context.stroke();
  marks.style.display = $('show-decisions').checked ? 'block' : 'none';
}

// One frame: resize → run → draw. Returns the raw map, the decisions and the timings.
const processFrame = (source, sourceWidth, sourceHeight) => exclusive(async () => {
  if (!current) throw new Error('no model loaded');
  const start = performance.now();
  const rgb = preprocess(source, current.width, current.height);
  const {map, inferenceMs} = await infer(rgb);
  draw(source, sourceWidth, sourceHeight, map);
  const decisions = decide(map, sourceWidth, sourceHeight);
  drawDecisions(decisions, sourceWidth);
  return {rgb, map, decisions, inferenceMs, frameMs: performance.now() - start};
});

// ------------------------------------------------------------------------------------------ latency

const recent = [];

function reportLatency(inferenceMs, frameMs) {
  recent.push(inferenceMs);
  if (recent.length > 30) recent.shift();
  const sorted = [...recent].sort((a, b) => a - b);
  const median = sorted[Math.floor(sorted.length / 2)];
  latencyLine.textContent = `inference ${inferenceMs.toFixed(1)} ms (median of last ${recent.length}: ` +
    `${median.toFixed(1)} ms, ${(1000 / median).toFixed(1)} FPS); whole frame ${frameMs.toFixed(1)} ms`;
}

// ------------------------------------------------------------------------------------------ inputs

// An image URL (or Blob) → ImageBitmap, decoded without colour-space conversion or premultiplication so
// that a PNG at the model size reaches the model byte for byte.
async function decodeImage(source) {
  const blob = source instanceof Blob ? source : await (await fetch(source)).blob();
  return createImageBitmap(blob, {colorSpaceConversion: 'none', premultiplyAlpha: 'none'});
}

async function runOnImage(source) {
  const bitmap = await decodeImage(source);
  try {
    const result = await processFrame(bitmap, bitmap.width, bitmap.height);
    reportLatency(result.inferenceMs, result.frameMs);
    return {...result, imageWidth: bitmap.width, imageHeight: bitmap.height};
  } finally {
    bitmap.close();
  }
}

let webcam = null;  // {stream, running}

async function startWebcam() {
  const stream = await navigator.mediaDevices.getUserMedia({video: {width: {ideal: 640}, height: {ideal: 480}}});
  const video = $('video');
  video.srcObject = stream;
  await video.play();
  webcam = {stream, running: true};
  $('webcam').textContent = 'Stop webcam';
  setStatus('webcam running');
  const session = webcam;
  while (session.running) {
    if (video.readyState >= 2 && video.videoWidth > 0) {
      const result = await processFrame(video, video.videoWidth, video.videoHeight);
      reportLatency(result.inferenceMs, result.frameMs);
    }
    await new Promise((resolve) => requestAnimationFrame(resolve));
  }
}

function stopWebcam() {
  if (!webcam) return;
  webcam.running = false;
  for (const track of webcam.stream.getTracks()) track.stop();
  $('video').srcObject = null;
  webcam = null;
  $('webcam').textContent = 'Start webcam';
  setStatus('webcam stopped');
}

function reportError(error) {
  console.error(error);
  setStatus(`error: ${error && error.message ? error.message : error}`, true);
}

$('image-file').addEventListener('change', async (event) => {
  const file = event.target.files[0];
  if (!file) return;
  stopWebcam();
  try {
    await modelLoaded();
    setStatus(`running on ${file.name}`);
    await runOnImage(file);
    setStatus(`${file.name}: done`);
  } catch (error) {
    reportError(error);
  }
});

$('model-file').addEventListener('change', async (event) => {
  const file = event.target.files[0];
  if (!file) return;
  try {
    setStatus(`loading ${file.name}…`);
    await loadModel(new Uint8Array(await file.arrayBuffer()), file.name);
    setStatus(`${file.name} loaded: choose an image or start the webcam`);
  } catch (error) {
    reportError(error);
  }
});

$('show-decisions').addEventListener('change', () => {
  $('marks').style.display = $('show-decisions').checked ? 'block' : 'none';
});

$('webcam').addEventListener('click', async () => {
  if (webcam) { stopWebcam(); return; }
  try {
    await modelLoaded();
    await startWebcam();
  } catch (error) {
    stopWebcam();
    reportError(error);
  }
});

// ------------------------------------------------------------------------------------------ start-up

const ready = (async () => {
  await runtime();
  setStatus(`loading ${DEFAULT_MODEL}…`);
  const info = await loadModel(DEFAULT_MODEL, DEFAULT_MODEL.split('/').pop());
  setStatus('ready: choose an image or start the webcam');
  return info;
})();
ready.catch(reportError);

// A model chosen with the file picker also counts when the default one failed to load.
const modelLoaded = async () => (current ? describe() : ready);

window.fastsalReady = ready;
window.fastsalLoadModel = async (source, name) => loadModel(
  typeof source === 'string' ? new URL(source, location.href).href : source, name || String(source));
window.fastsalRun = async (imageUrl, options = {}) => {
  await modelLoaded();
  const result = await runOnImage(new URL(imageUrl, location.href).href);
  const answer = {
    width: current.width, height: current.height, map: Array.from(result.map),
    outputName: current.outputName, outputDtype: current.outputDtype,
    inferenceMs: result.inferenceMs, frameMs: result.frameMs, imageWidth: result.imageWidth,
    imageHeight: result.imageHeight, center: result.decisions.center, crops: result.decisions.crops,
  };
  if (options.withInput) answer.input = Array.from(result.rgb);
  return answer;
};
