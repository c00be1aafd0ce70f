// The attention centre and salient crops of fastsal_tf.predict.decisions, for the web demo: the same rules and
// constants, applied to the model-resolution probability map (the Python rule for a map smaller than the
// image: search at the map's size, scale sizes and coordinates to the image). tests/test_web_demo.py checks
// the results against the Python library on the same map.
//   probabilities(values, kind) → Float64Array summing to 1 (kind: 'map' sigmoid, 'prob', 'logits')
//   cropBoxes(prob, mapW, mapH, imageW, imageH, aspects, scale) → [{aspect: '16:9', box: [x0, y0, x1, y1]}]
//   attentionCenter(prob, mapW, mapH, imageW, imageH) → [x, y]
// Coordinates: 0-based pixels of the image; boxes are integer edges, x1 / y1 exclusive.

export const CENTER_PRIOR = 0.4;
export const CENTER_RADIUS = 0.1;
export const CENTER_GRID = 256;
export const CROP_PRIOR = 0.3;
export const PRIOR_SIGMA = 0.25;

function softmax(logits) {
  let top = -Infinity;
  for (const v of logits) top = Math.max(top, v);
  const out = new Float64Array(logits.length);
  let total = 0;
  for (let i = 0; i < logits.length; i++) total += (out[i] = Math.exp(logits[i] - top));
  for (let i = 0; i < out.length; i++) out[i] /= total;
  return out;
}

// A model output → probability map, as fastsal_tf.predict.backends.to_probabilities.
export function probabilities(values, kind) {
  if (kind === 'logits') return softmax(values);
  if (kind === 'map') {
    const eps = 1e-6;
    return softmax(Array.from(values, (v) => {
      const m = Math.min(1 - eps, Math.max(eps, v));
      return Math.log(m) - Math.log1p(-m);
    }));
  }
  const out = Float64Array.from(values, (v) => Math.max(0, v));
  const total = out.reduce((a, b) => a + b, 0);
  for (let i = 0; i < out.length; i++) out[i] = total > 0 ? out[i] / total : 1 / out.length;
  return out;
}

// Python's round(): halves go to the even neighbour.
function roundHalfEven(x) {
  const r = Math.round(x);
  return Math.abs(x - Math.trunc(x)) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

export function parseAspect(text) {
  const parts = String(text).trim().split(':');
  const [w, h] = parts.map(Number);
  if (parts.length !== 2 || !(Number.isFinite(w) && Number.isFinite(h) && w > 0 && h > 0)) {
    throw new Error(`aspect ratio ${JSON.stringify(text)} is not W:H with positive numbers`);
  }
  return {width: w, height: h, label: `${w}:${h}`};
}

// [height, width] of the largest box of the ratio inside the image, times scale (decisions.crop_size).
export function cropSize(imageH, imageW, aspect, scale = 1) {
  const ratio = aspect.width / aspect.height;
  let boxH, boxW;
  if (imageW >= imageH * ratio) {
    boxH = roundHalfEven(imageH * scale);
    boxW = Math.min(roundHalfEven(boxH * ratio), imageW);
  } else {
    boxW = roundHalfEven(imageW * scale);
    boxH = Math.min(roundHalfEven(boxW / ratio), imageH);
  }
  if (boxH < 1 || boxW < 1) throw new Error(`a ${imageW}x${imageH} image is too small for a ${aspect.label} crop`);
  return [boxH, boxW];
}

// The centred Gaussian's profile along one axis of n pixels (postprocess.center_gaussian), summing to 1.
function priorProfile(n) {
  const out = new Float64Array(n);
  let total = 0;
  for (let i = 0; i < n; i++) {
    const t = (i + 0.5 - n / 2) / (PRIOR_SIGMA * n);
    total += (out[i] = Math.exp(-0.5 * t * t));
  }
  for (let i = 0; i < n; i++) out[i] /= total;
  return out;
}

function profileWindowSums(profile, size) {
  const cumulative = new Float64Array(profile.length + 1);
  for (let i = 0; i < profile.length; i++) cumulative[i + 1] = cumulative[i] + profile[i];
  return Float64Array.from({length: profile.length - size + 1}, (_, i) => cumulative[i + size] - cumulative[i]);
}

export function cropBoxes(prob, mapW, mapH, imageW, imageH, aspects, scale = 1, prior = CROP_PRIOR) {
  const stride = mapW + 1;
  const table = new Float64Array((mapH + 1) * stride);  // summed-area table: columns first, then rows
  for (let y = 0; y < mapH; y++) {
    for (let x = 0; x < mapW; x++) table[(y + 1) * stride + x + 1] = table[y * stride + x + 1] + prob[y * mapW + x];
  }
  for (let y = 1; y <= mapH; y++) {
    for (let x = 1; x <= mapW; x++) table[y * stride + x] += table[y * stride + x - 1];
  }
  const total = table[mapH * stride + mapW];
  const gy = priorProfile(mapH), gx = priorProfile(mapW);
  return aspects.map((text) => {
    const aspect = typeof text === 'string' ? parseAspect(text) : text;
    const [boxH, boxW] = cropSize(imageH, imageW, aspect, scale);
    const h = Math.min(mapH, Math.max(1, roundHalfEven(boxH * mapH / imageH)));
    const w = Math.min(mapW, Math.max(1, roundHalfEven(boxW * mapW / imageW)));
    const wy = profileWindowSums(gy, h), wx = profileWindowSums(gx, w);
    const rows = mapH - h + 1, cols = mapW - w + 1;
    const sums = new Float64Array(rows * cols);
    let best = -Infinity;
    for (let y = 0; y < rows; y++) {
      for (let x = 0; x < cols; x++) {
        const mass = table[(y + h) * stride + x + w] - table[y * stride + x + w] - table[(y + h) * stride + x] +
          table[y * stride + x];
        const value = mass * (1 - prior) / total + prior * wy[y] * wx[x];
        sums[y * cols + x] = value;
        best = Math.max(best, value);
      }
    }
    // Among placements within 1e-9 of the best, the one nearest the middle (decisions.best_position).
    let y0 = 0, x0 = 0, nearest = Infinity;
    for (let y = 0; y < rows; y++) {
      for (let x = 0; x < cols; x++) {
        if (sums[y * cols + x] < best - 1e-9) continue;
        const distance = (y - (rows - 1) / 2) ** 2 + (x - (cols - 1) / 2) ** 2;
        if (distance < nearest) { nearest = distance; y0 = y; x0 = x; }
      }
    }
    if (mapH !== imageH || mapW !== imageW) {
      y0 = Math.min(Math.max(roundHalfEven(y0 * imageH / mapH), 0), imageH - boxH);
      x0 = Math.min(Math.max(roundHalfEven(x0 * imageW / mapW), 0), imageW - boxW);
    }
    return {aspect: aspect.label, box: [x0, y0, x0 + boxW, y0 + boxH]};
  });
}

function blockSums(values, width, height, block) {
  const cols = Math.ceil(width / block), rows = Math.ceil(height / block);
  const out = new Float64Array(rows * cols);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) out[Math.floor(y / block) * cols + Math.floor(x / block)] += values[y * width + x];
  }
  return {out, rows, cols};
}

export function attentionCenter(prob, mapW, mapH, imageW, imageH, prior = CENTER_PRIOR) {
  const block = Math.max(1, Math.ceil(Math.max(mapH, mapW) / CENTER_GRID));
  const {out: cells, rows, cols} = blockSums(prob, mapW, mapH, block);
  const total = cells.reduce((a, b) => a + b, 0);
  const gy = blockSums(priorProfile(mapH), 1, mapH, block).out;
  const gx = blockSums(priorProfile(mapW), mapW, 1, block).out;
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) cells[r * cols + c] = cells[r * cols + c] * (1 - prior) / total + prior * gy[r] * gx[c];
  }
  // Disk sums from row prefix sums: each disk row is a run of cells.
  const radius = CENTER_RADIUS * Math.hypot(mapH, mapW) / block;
  const reach = Math.floor(radius);
  const prefix = new Float64Array(rows * (cols + 1));
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) prefix[r * (cols + 1) + c + 1] = prefix[r * (cols + 1) + c] + cells[r * cols + c];
  }
  const halfWidths = Array.from({length: 2 * reach + 1}, (_, k) => {
    const dy = k - reach;
    let dx = Math.floor(Math.sqrt(Math.max(0, radius * radius - dy * dy)));
    while (dy * dy + dx * dx > radius * radius) dx--;  // the kernel's cells: dy² + dx² ≤ radius²
    return dx;
  });
  let best = -Infinity, bestRow = 0, bestCol = 0;
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      let sum = 0;
      for (let k = 0; k <= 2 * reach; k++) {
        const row = r + k - reach;
        if (row < 0 || row >= rows) continue;
        const lo = Math.max(0, c - halfWidths[k]), hi = Math.min(cols, c + halfWidths[k] + 1);
        sum += prefix[row * (cols + 1) + hi] - prefix[row * (cols + 1) + lo];
      }
      if (sum > best) { best = sum; bestRow = r; bestCol = c; }
    }
  }
  const xMap = (bestCol * block + Math.min((bestCol + 1) * block, mapW)) / 2 - 0.5;
  const yMap = (bestRow * block + Math.min((bestRow + 1) * block, mapH)) / 2 - 0.5;
  return [(xMap + 0.5) * imageW / mapW - 0.5, (yMap + 0.5) * imageH / mapH - 0.5];
}
