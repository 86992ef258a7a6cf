// Loads SAM lab's WebAssembly with a truthful progress line: the bytes downloaded (of the
// total when the server says it), then "starting", and on failure what is wrong in plain
// words. Shared by index.html (the app) and bench.html (the CPU benchmark).
//
// The failure is also written to `data-error` on the status element (the browser test reads it).

const WASM = 'samlab_bg.wasm';

// The smallest module that uses a SIMD instruction (v128.const): SAM lab's CPU engine is built
// with WebAssembly SIMD.
const SIMD_PROBE = new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 22, 1, 20, 0, 253, 12,
  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 11]);

function mb(bytes) {
  return (bytes / 1e6).toFixed(1);
}

export class LoadError extends Error {}

/// What this browser lacks, in words, or null.
export function missingFeature() {
  if (typeof WebAssembly !== 'object' || typeof WebAssembly.instantiate !== 'function') {
    return 'This browser cannot run WebAssembly, which SAM lab is made of. Open the page in a current Chrome, Edge, Firefox or Safari (and check that WebAssembly is not switched off).';
  }
  if (!WebAssembly.validate(SIMD_PROBE)) {
    return 'This browser\'s WebAssembly has no SIMD, which SAM lab needs. Update the browser (Chrome or Edge 91+, Firefox 89+, Safari 16.4+).';
  }
  if (typeof fetch !== 'function' || typeof Promise !== 'function') {
    return 'This browser is too old for SAM lab (no fetch). Update it, or open the page in a current Chrome, Edge, Firefox or Safari.';
  }
  return null;
}

/// Downloads the module, reporting progress through `say(text)`; returns a Response whose body
/// is the downloaded bytes (for wasm-bindgen's init, which compiles it).
async function download(say) {
  let response;
  try {
    response = await fetch(WASM);
  } catch (e) {
    throw new LoadError(`Could not download ${WASM}: the network request failed (${e.message}). Check the connection and reload.`);
  }
  if (!response.ok) {
    const why = response.status === 404 ? 'the file is not on the server (404): the site is incomplete' : `the server answered ${response.status} ${response.statusText}`;
    throw new LoadError(`Could not download ${WASM}: ${why}.`);
  }
  // Content-Length is the size on the wire: with compression it is smaller than the bytes read.
  const encoded = response.headers.get('Content-Encoding');
  const total = encoded ? 0 : Number(response.headers.get('Content-Length') ?? 0);
  if (!response.body || typeof response.body.getReader !== 'function') {
    say('Downloading SAM lab…');
    return new Response(await response.arrayBuffer(), { headers: { 'Content-Type': 'application/wasm' } });
  }
  const reader = response.body.getReader();
  const chunks = [];
  let received = 0;
  for (;;) {
    let step;
    try {
      step = await reader.read();
    } catch (e) {
      throw new LoadError(`The download of ${WASM} broke off after ${mb(received)} MB (${e.message}). Reload the page.`);
    }
    if (step.done) break;
    chunks.push(step.value);
    received += step.value.length;
    say(total > 0 ? `Downloading SAM lab: ${mb(received)} of ${mb(total)} MB (${Math.floor((100 * received) / total)} %)` : `Downloading SAM lab: ${mb(received)} MB`);
  }
  if (total > 0 && received < total) {
    throw new LoadError(`The download of ${WASM} is incomplete: ${mb(received)} of ${mb(total)} MB arrived. Reload the page.`);
  }
  return new Response(new Blob(chunks), { headers: { 'Content-Type': 'application/wasm' } });
}

/// Loads the JS bindings and the module; `say` shows progress. Returns the bindings' exports.
/// Throws a LoadError whose message is meant for the reader.
export async function load(say) {
  const missing = missingFeature();
  if (missing) throw new LoadError(missing);
  let bindings;
  try {
    bindings = await import('./samlab.js');
  } catch (e) {
    throw new LoadError(`Could not load samlab.js (${e.message}): the site is incomplete or this browser is too old for JavaScript modules.`);
  }
  const response = await download(say);
  say('Starting SAM lab…');
  try {
    await bindings.default({ module_or_path: response });
  } catch (e) {
    if (e instanceof WebAssembly.CompileError) {
      throw new LoadError(`The downloaded ${WASM} is damaged or incomplete (${e.message}). Reload the page; if this persists, the site's files are broken.`);
    }
    throw new LoadError(`SAM lab's WebAssembly could not start (${e.message ?? e}).`);
  }
  return bindings;
}

/// Whether the browser offers a WebGPU adapter (then wgpu renders and the GPU engine may
/// train; otherwise WebGL2 renders and the CPU engine trains).
export async function webgpuAdapter() {
  try {
    return Boolean(navigator.gpu && (await navigator.gpu.requestAdapter()));
  } catch {
    return false;
  }
}

/// Shows a failure on `element` (text and data-error) and in the console.
export function fail(element, e) {
  const text = e instanceof LoadError ? e.message : `SAM lab failed to load: ${e?.message ?? e}`;
  console.error(text);
  element.textContent = text;
  element.classList.add('error');
  element.setAttribute('data-error', text);
  document.body.setAttribute('data-load-error', text);
}
