// The browser test: the web build, served on 127.0.0.1 (SAMLAB_URL), in headless Chromium.
//
// 1. WebGPU on (SwiftShader): the app starts, announces its engine and training advances
//    (the step counter the page mirrors on the canvas's data-steps, read twice).
// 2. WebGPU on, engine forced to gpu through the link: the GPU engine trains in the browser.
// 3. No WebGPU flag: eframe falls back to WebGL2, the app announces the CPU fallback and trains;
//    the loading line counted the download ("of N MB (%)") and said "Starting".
// 4. A link with a config in its hash reproduces that config (read back from the page's URL,
//    which the app rewrites from its own state).
// 5. A malformed link opens the defaults and says what was ignored. The user's CSV through the
//    file input trains, a bad one is named by line and column; a link with plot smoothing, PCA
//    landscape settings and a run measuring the Hessian's density keeps them and measures
//    (data-densities), then takes a live η change and a PCA landscape from the keyboard
//    (data-changes, data-landscape); weights of the run's shape load through the file input,
//    others are refused.
// 6. The size of samlab_bg.wasm (gzip -9, measured here) is within the limit xtask states.
// 7. The bench page runs the CPU engine's bench and publishes finite numbers.
// 8. A teacher's link opens its preset with panels hidden (data-preset, data-view,
//    data-hidden), keeps them hidden as the page rewrites its hash; a bad one names the bad
//    key and value.
// 9. A phone viewport (390×844) shows the app (screenshot).
// 10. The worst frame of SAM lab's own code on the m-sharpness preset (CPU engine), from the
//    page's performance measures; and while four runs measure sharpness and a PCA landscape is
//    found (data-measurements, data-landscape).
// 11. A broken site (a truncated wasm, a missing one) says what is wrong in plain words; a copy
//    in a sub-directory, gzip on the wire (as GitHub Pages serves), loads and trains on mnist5k.
// Every app case saves a screenshot and fails on a blank canvas, a panic or an uncaught error.
//
// Run by `cargo xtask test` (which builds, serves and passes the URL); by hand:
//   cargo xtask web && (cargo xtask serve 8080 &) && SAMLAB_URL=http://127.0.0.1:8080/ node browser.mjs

import { chromium } from 'playwright-core';
import { execFileSync } from 'node:child_process';
import { cpSync, mkdtempSync, mkdirSync, readFileSync, rmSync, truncateSync, writeFileSync, statSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { extname, join, normalize } from 'node:path';
import { gzipSync } from 'node:zlib';

const URL = process.env.SAMLAB_URL ?? 'http://127.0.0.1:8080/';
const SHOTS = process.env.SAMLAB_SHOTS ?? 'screenshots';
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
mkdirSync(SHOTS, { recursive: true });

const BASE = ['--no-sandbox', '--no-first-run', '--disable-background-networking', '--disable-component-update',
  '--disable-sync', '--disable-quic'];
const WEBGPU = ['--enable-unsafe-webgpu', '--enable-features=Vulkan', '--use-vulkan=swiftshader', '--use-angle=vulkan'];

function b64url(text) {
  return Buffer.from(text, 'utf8').toString('base64url');
}

function decodeHash(hash) {
  const h = decodeURIComponent(hash.replace(/^#/, ''));
  // A preset as it opens travels as a readable link.
  const preset = /^preset=([a-z0-9-]+)/.exec(h);
  if (preset) return { preset: preset[1] };
  if (!h.startsWith('v1:')) throw new Error(`the page's hash is not a v1 lab: ${h.slice(0, 40)}`);
  return JSON.parse(Buffer.from(h.slice(3), 'base64url').toString('utf8'));
}

/// Standard deviation of the grey levels of a PNG (ImageMagick), to tell a blank canvas.
function stddev(png) {
  return parseFloat(execFileSync('identify', ['-format', '%[fx:standard_deviation]', png]).toString());
}

async function withPage(name, flags, url, body, { viewport = { width: 1400, height: 900 }, initScript = null, ready = '#samlab_canvas[data-ready="1"]', blankCheck = true } = {}) {
  const userData = mkdtempSync(join(tmpdir(), 'samlab-chromium-'));
  const browser = await chromium.launchPersistentContext(userData, {
    executablePath: CHROMIUM,
    headless: true,
    args: [...BASE, ...flags],
    ignoreDefaultArgs: ['--disable-gpu'],
    viewport,
  });
  const page = browser.pages()[0] ?? await browser.newPage();
  const problems = [];
  const log = [];
  page.on('console', (m) => {
    const text = m.text();
    log.push(`[${m.type()}] ${text}`);
    if (/panicked|RuntimeError|unreachable executed/i.test(text)) problems.push(`console: ${text}`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  try {
    if (initScript) await page.addInitScript(initScript);
    await page.goto(url, { waitUntil: 'load' });
    await page.waitForSelector(ready, { timeout: 90_000 });
    await body(page);
    const shot = join(SHOTS, `${name}.png`);
    await page.screenshot({ path: shot });
    const sd = stddev(shot);
    if (blankCheck && !(sd > 0.02)) problems.push(`the screenshot ${shot} is blank (standard deviation ${sd})`);
    if (problems.length) throw new Error(problems.join('\n'));
    console.log(`ok: ${name} (screenshot ${shot})`);
  } catch (e) {
    writeFileSync(join(SHOTS, `${name}.console.txt`), log.join('\n'));
    await page.screenshot({ path: join(SHOTS, `${name}-failed.png`) }).catch(() => {});
    throw new Error(`${name}: ${e.message}\n--- console (last 30 lines) ---\n${log.slice(-30).join('\n')}`);
  } finally {
    await browser.close();
  }
}

async function attr(page, name) {
  return page.$eval('#samlab_canvas', (c, n) => c.getAttribute(n) ?? '', name);
}

/// Reads the step counter twice, `wait` ms apart, and requires progress.
async function trainingAdvances(page, wait = 4000) {
  // Let the first evaluation and frames pass.
  await page.waitForFunction(() => Number(document.querySelector('#samlab_canvas').dataset.steps) > 0, null, { timeout: 60_000 });
  const a = Number(await attr(page, 'data-steps'));
  await page.waitForTimeout(wait);
  const b = Number(await attr(page, 'data-steps'));
  if (!(b > a)) throw new Error(`training does not advance: ${a} then ${b} steps`);
  return [a, b];
}

function labJson(overrides) {
  const run = (kind, extra = {}) => ({
    optimizer: { kind, lr: 0.05, momentum: 0.9, weight_decay: 0.0005, rho: 0.05, m: 8, ...extra },
    batch: 32, epochs: 100, color: 0,
  });
  return {
    version: 1,
    preset: null,
    shared: { dataset: { name: 'circles', samples: 500, input_noise: 0.1, label_noise: 0.1 }, model: { hidden: [32, 32], activation: 'tanh' }, seed: 7, backend: 'auto' },
    runs: [run('asam'), { ...run('msam', { m: 4 }), color: 1 }, { ...run('rwsam'), color: 2 }],
    ...overrides,
  };
}

// Every text the loading line shows, in order (the page's #loading element).
const LOADING_OBSERVER = () => {
  window.__samlabLoading = [];
  new MutationObserver(() => {
    const text = document.getElementById('loading')?.textContent;
    if (text && text !== window.__samlabLoading.at(-1)) window.__samlabLoading.push(text);
  }).observe(document, { subtree: true, childList: true, characterData: true });
};

const failures = [];
// SAMLAB_CHECKS=bench,frames runs only the checks named (all of them by default).
const ONLY = process.env.SAMLAB_CHECKS ? process.env.SAMLAB_CHECKS.split(',') : null;

async function check(name, fn) {
  if (ONLY && !ONLY.includes(name)) return;
  try {
    await fn();
  } catch (e) {
    failures.push(e.message);
    console.error(`FAILED: ${e.message}`);
  }
}

await check('webgpu', () => withPage('web-webgpu', WEBGPU, URL, async (page) => {
  const renderer = await attr(page, 'data-renderer');
  if (!renderer.includes('WebGPU')) throw new Error(`expected the WebGPU renderer, got "${renderer}"`);
  const [a, b] = await trainingAdvances(page);
  console.log(`  renderer ${renderer}; engine "${await attr(page, 'data-engine')}"; steps ${a} -> ${b}`);
}));

// The GPU engine itself in the browser: the WGSL kernels compile in Chromium's WebGPU
// (SwiftShader) and train. A fallback to the CPU fails the test: it would hide a shader that a
// browser rejects.
await check('webgpu-gpu-engine', () => withPage('web-webgpu-gpu-engine', WEBGPU,
  `${URL}#v1:${b64url(JSON.stringify(labJson({ shared: { ...labJson().shared, backend: 'gpu' } })))}`, async (page) => {
    const [a, b] = await trainingAdvances(page, 6000);
    const engine = await attr(page, 'data-engine');
    if (!engine.startsWith('GPU engine on')) {
      throw new Error(`expected the GPU engine in Chromium's WebGPU, got "${engine}"`);
    }
    console.log(`  engine "${engine}"; steps ${a} -> ${b}`);
  }));

await check('no-webgpu', () => withPage('web-cpu-fallback', [], URL, async (page) => {
  const renderer = await attr(page, 'data-renderer');
  const engine = await attr(page, 'data-engine');
  if (!renderer.includes('WebGL2')) throw new Error(`expected the WebGL2 renderer, got "${renderer}"`);
  if (!/CPU .*no WebGPU.*CPU fallback/.test(engine)) throw new Error(`the CPU fallback is not announced: "${engine}"`);
  const [a, b] = await trainingAdvances(page);
  // The server sends the module uncompressed with its length: the loading line counts to it.
  const texts = await page.evaluate(() => window.__samlabLoading);
  if (!texts.some((t) => /^Downloading SAM lab: \d+\.\d of \d+\.\d MB \(\d+ %\)$/.test(t)) || !texts.includes('Starting SAM lab…')) throw new Error(`no download progress, then "Starting", among ${JSON.stringify(texts)}`);
  console.log(`  renderer ${renderer}; engine "${engine}"; steps ${a} -> ${b}; loading: ${texts.at(0)} … ${texts.at(-1)}`);
}, { initScript: LOADING_OBSERVER }));

await check('link', () => withPage('web-link', [], `${URL}#v1:${b64url(JSON.stringify(labJson()))}`, async (page) => {
  await page.waitForTimeout(500);
  const state = decodeHash(await page.evaluate(() => location.hash));
  const want = labJson();
  const got = {
    dataset: state.shared.dataset.name, noise: state.shared.dataset.label_noise, seed: state.shared.seed,
    hidden: state.shared.model.hidden, activation: state.shared.model.activation,
    kinds: state.runs.map((r) => r.optimizer.kind), m: state.runs[1].optimizer.m,
  };
  const expected = {
    dataset: want.shared.dataset.name, noise: want.shared.dataset.label_noise, seed: want.shared.seed,
    hidden: want.shared.model.hidden, activation: want.shared.model.activation,
    kinds: want.runs.map((r) => r.optimizer.kind), m: 4,
  };
  if (JSON.stringify(got) !== JSON.stringify(expected)) {
    throw new Error(`the link's config was not reproduced:\n got ${JSON.stringify(got)}\nwant ${JSON.stringify(expected)}`);
  }
  if ((await attr(page, 'data-runs')) !== '3') throw new Error(`expected 3 runs, the page has ${await attr(page, 'data-runs')}`);
  if (!(await attr(page, 'data-messages')).includes('opened the settings from the link')) throw new Error('no message about the link');
  await trainingAdvances(page, 2000);
}));

await check('bad-link', () => withPage('web-bad-link', [], `${URL}#v1:bm90IGpzb24`, async (page) => {
  const messages = await attr(page, 'data-messages');
  if (!messages.includes("ignored the link's settings")) throw new Error(`no message about the bad link: "${messages}"`);
  const state = decodeHash(await page.evaluate(() => location.hash));
  if (state.preset !== 'moons-sgd-vs-sam') throw new Error(`expected the default preset, got ${state.preset}`);
  await trainingAdvances(page, 2000);
}));

// Every `samlab-frame` measure the page makes (the app marks its own work in each frame).
const FRAME_OBSERVER = () => {
  window.__samlabFrames = [];
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) if (e.name === 'samlab-frame') window.__samlabFrames.push(e.duration);
  }).observe({ entryTypes: ['measure'] });
};
const FRAME_SECONDS = Number(process.env.SAMLAB_FRAME_SECONDS ?? 20);
// The target: the app's frame budget (8 ms, its default) + 20 ms. It is reported, not enforced
// (one CPU step of m-SAM with m = 1 alone can exceed it in wasm on a slow machine); the check
// fails above FRAME_LIMIT_MS (a frame that blocks far longer is a regression).
const FRAME_TARGET_MS = 28;
const FRAME_LIMIT_MS = Number(process.env.SAMLAB_FRAME_LIMIT_MS ?? 150);
/// Worst, p99 and median of frame measures, and how many are over the target.
function frameSummary(frames) {
  const sorted = [...frames].sort((a, b) => a - b);
  return { frames: frames.length, median_ms: sorted[sorted.length >> 1], p99_ms: sorted[Math.floor(0.99 * (sorted.length - 1))], worst_ms: sorted[sorted.length - 1], over_target: frames.filter((f) => f > FRAME_TARGET_MS).length };
}
// Reading a large CSV file: fails above this (the whole file in one frame took seconds).
const CSV_LIMIT_MS = Number(process.env.SAMLAB_CSV_LIMIT_MS ?? 150);

// The user's own data through the page's file input (#samlab_file_input: the app's "Open file…"
// clicks it): a CSV of 2D points selects the dataset and trains; a bad file says where, in one line.
await check('own-csv', () => withPage('web-own-csv', [], URL, async (page) => {
  const rows = ['x1,x2,label'];
  // 2,000 rows: enough steps per epoch that the runs are still training when the check looks.
  for (let i = 0; i < 2000; i++) {
    const c = i % 2, a = i * 0.7, r = 0.5 + c;
    rows.push(`${(r * Math.cos(a)).toFixed(3)},${(r * Math.sin(a)).toFixed(3)},${c}`);
  }
  await page.setInputFiles('#samlab_file_input', { name: 'rings.csv', mimeType: 'text/csv', buffer: Buffer.from(rows.join('\n') + '\n') });
  await page.waitForFunction(() => document.querySelector('#samlab_canvas').dataset.messages.includes('loaded rings.csv'), null, { timeout: 30_000 });
  await page.waitForTimeout(500);
  const state = decodeHash(await page.evaluate(() => location.hash));
  if (state.shared.dataset.name !== 'csv' || state.shared.dataset.csv.name !== 'rings.csv') {
    throw new Error(`the CSV file is not the lab's dataset: ${JSON.stringify(state.shared.dataset)}`);
  }
  await trainingAdvances(page, 2000);
  await page.setInputFiles('#samlab_file_input', { name: 'bad.csv', mimeType: 'text/csv', buffer: Buffer.from('x,y,label\n1,2,0\n1,oops,1\n') });
  await page.waitForFunction(() => document.querySelector('#samlab_canvas').dataset.messages.includes('bad.csv line 3 column 2'), null, { timeout: 30_000 });
  const after = decodeHash(await page.evaluate(() => location.hash));
  if (after.shared.dataset.csv?.name !== 'rings.csv') throw new Error('a bad file changed the dataset');
  // A large file (3,000 images of 28×28, 7 MB) is read over several frames: every frame from the
  // file's arrival to the message that it loaded, in SAM lab's own code.
  const big = ['label,' + Array.from({ length: 784 }, (_, k) => `p${k}`).join(',')];
  for (let i = 0; i < 3000; i++) {
    const px = Array.from({ length: 784 }, (_, k) => ((i * 31 + k * 17) % 97 < 20 ? (i * 7 + k) % 256 : 0));
    big.push(`${i % 10},${px.join(',')}`);
  }
  const bytes = Buffer.from(big.join('\n') + '\n');
  await page.evaluate(() => { window.__samlabFrames.length = 0; });
  await page.setInputFiles('#samlab_file_input', { name: 'big.csv', mimeType: 'text/csv', buffer: bytes });
  await page.waitForFunction(() => document.querySelector('#samlab_canvas').dataset.messages.includes('loaded big.csv'), null, { timeout: 120_000 });
  const summary = { ...frameSummary(await page.evaluate(() => window.__samlabFrames.slice())), bytes: bytes.length, target_ms: FRAME_TARGET_MS, limit_ms: CSV_LIMIT_MS };
  writeFileSync(join(SHOTS, 'frames-csv.json'), JSON.stringify(summary, null, 2));
  console.log(`  a ${(bytes.length / 1e6).toFixed(1)} MB CSV read in ${summary.frames} frames; median ${summary.median_ms.toFixed(1)} ms, worst ${summary.worst_ms.toFixed(1)} ms in SAM lab's code`);
  if (summary.frames < 3) throw new Error(`the ${bytes.length}-byte CSV was read in ${summary.frames} frame(s), not spread over frames`);
  if (summary.worst_ms > CSV_LIMIT_MS) throw new Error(`own-csv: a frame spent ${summary.worst_ms.toFixed(1)} ms reading the CSV, over ${CSV_LIMIT_MS} ms`);
}, { initScript: FRAME_OBSERVER }));

// Trained weights through the same file input (the params format of `samlab train
// --save-params`): a file of the selected run's shape loads into it, another shape is refused in
// one line naming both shapes, and the run keeps training.
await check('weights', () => withPage('web-weights', [], `${URL}#v1:${b64url(JSON.stringify(labJson()))}`, async (page) => {
  const sizes = [2, ...labJson().shared.model.hidden, 2];
  const layers = (sz) => sz.slice(1).map((out, l) => ({ w: Array.from({ length: out }, (_, r) => Array.from({ length: sz[l] }, (_, c) => 0.01 * ((r + 2 * c) % 5 - 2))), b: Array(out).fill(0) }));
  await page.setInputFiles('#samlab_file_input', { name: 'w.json', mimeType: 'application/json', buffer: Buffer.from(JSON.stringify({ layers: layers(sizes) })) });
  await page.waitForFunction(() => /loaded .* into run 1 from w\.json/.test(document.querySelector('#samlab_canvas').dataset.messages), null, { timeout: 30_000 });
  await page.setInputFiles('#samlab_file_input', { name: 'wrong.json', mimeType: 'application/json', buffer: Buffer.from(JSON.stringify({ layers: layers([3, 4, 2]) })) });
  await page.waitForFunction(() => document.querySelector('#samlab_canvas').dataset.messages.includes('ignored the weights'), null, { timeout: 30_000 });
  const messages = await attr(page, 'data-messages');
  if (!messages.includes('3-4-2')) throw new Error(`the refusal does not name the file's shape: "${messages}"`);
  await trainingAdvances(page, 2000);
}));

// A lab link with the newer settings: smoothing and a log axis, PCA landscape directions on a
// 21-point grid, and a run measuring the Hessian's eigenvalue density in the browser.
await check('lab-features', () => withPage('web-lab-features', [], `${URL}#v1:${b64url(JSON.stringify(labJson({
  shared: { dataset: { name: 'moons', samples: 1600, input_noise: 0.1, label_noise: 0.0 }, model: { hidden: [16], activation: 'tanh' }, seed: 3, backend: 'cpu' },
  runs: [{ optimizer: { kind: 'sam', lr: 0.1, momentum: 0.9, weight_decay: 0.0, rho: 0.05, m: 8 }, batch: 32, epochs: 1000, measure_every: 20, spectrum: true, color: 0 }],
  plots: { smoothing: 0.8, log_y: ['plot_loss'], only_selected: [] },
  landscape: { directions: 'pca', grid: 21, range: null },
})))}`, async (page) => {
  await page.waitForFunction(() => Number(document.querySelector('#samlab_canvas').dataset.densities) >= 1, null, { timeout: 60_000 });
  const state = decodeHash(await page.evaluate(() => location.hash));
  const got = { smoothing: state.plots?.smoothing, log_y: state.plots?.log_y, directions: state.landscape?.directions, grid: state.landscape?.grid, spectrum: state.runs[0].spectrum };
  const want = { smoothing: 0.8, log_y: ['plot_loss'], directions: 'pca', grid: 21, spectrum: true };
  if (JSON.stringify(got) !== JSON.stringify(want)) throw new Error(`the link's plot, landscape or spectrum settings were not kept:\n got ${JSON.stringify(got)}\nwant ${JSON.stringify(want)}`);
  const messages = await attr(page, 'data-messages');
  if (/fail|ignored/i.test(messages)) throw new Error(`unexpected messages: "${messages}"`);
  await trainingAdvances(page, 2000);
  console.log(`  density measured in the page; worst frame so far ${await attr(page, 'data-worst-frame-ms')} ms in SAM lab's code`);
  // The lecture-hall keys: ] doubles the selected run's η while it trains (a live change), L
  // computes the landscape along the trajectory's principal components.
  await page.locator('#samlab_canvas').focus();
  await page.keyboard.press(']');
  await page.waitForFunction(() => Number(document.querySelector('#samlab_canvas').dataset.changes) >= 1, null, { timeout: 30_000 });
  const lr = decodeHash(await page.evaluate(() => location.hash)).runs[0].optimizer.lr;
  if (lr !== 0.2) throw new Error(`] did not double η: ${lr}`);
  await page.keyboard.press('l');
  await page.waitForFunction(() => /^pca (\d+)\/\1$/.test(document.querySelector('#samlab_canvas').dataset.landscape), null, { timeout: 90_000 });
  console.log(`  live η change and a PCA landscape (${await attr(page, 'data-landscape')}) from the keyboard; worst frame ${await attr(page, 'data-worst-frame-ms')} ms`);
  await trainingAdvances(page, 2000);
}));

// --- The web build: size, bench page, teaching links, phone, frames, loading failures ---

const GZIP_LIMIT = 2_000_000;
await check('size', async () => {
  const size = await (await fetch(`${URL}size.json`)).json();
  const wasm = Buffer.from(await (await fetch(`${URL}samlab_bg.wasm`)).arrayBuffer());
  const gz = gzipSync(wasm, { level: 9 }).length;
  console.log(`ok: size: samlab_bg.wasm ${(wasm.length / 1e6).toFixed(2)} MB raw, ${(gz / 1e6).toFixed(2)} MB gzip -9 (limit ${(GZIP_LIMIT / 1e6).toFixed(2)}; xtask measured ${(size.wasm_gzip9 / 1e6).toFixed(2)})`);
  if (size.wasm_gzip9_limit !== GZIP_LIMIT) throw new Error(`size: xtask's limit ${size.wasm_gzip9_limit} differs from the test's ${GZIP_LIMIT}`);
  if (gz > GZIP_LIMIT) throw new Error(`size: samlab_bg.wasm is ${gz} bytes gzip -9, over ${GZIP_LIMIT}`);
});

await check('bench', () => withPage('web-bench', [], `${URL}bench.html`, async (page) => {
  await page.waitForSelector('body[data-bench]', { timeout: 240_000 });
  const bench = JSON.parse(await page.$eval('body', (b) => b.dataset.bench));
  const labels = bench.rows.map((r) => r.optimizer);
  const want = ['SGD', 'SAM', 'm-SAM m=8', 'm-SAM m=1', 'RW-SAM λ=1'];
  if (JSON.stringify(labels) !== JSON.stringify(want)) throw new Error(`bench rows ${JSON.stringify(labels)}, want ${JSON.stringify(want)}`);
  for (const r of bench.rows) {
    if (!(Number.isFinite(r.median_ms) && r.median_ms > 0)) throw new Error(`bench: ${r.optimizer} has ${r.median_ms} ms/step`);
  }
  writeFileSync(join(SHOTS, 'bench.json'), JSON.stringify(bench, null, 2));
  console.log(`  ${bench.engine}, ${bench.steps} steps: ${bench.rows.map((r) => `${r.optimizer} ${r.median_ms.toFixed(3)} ms`).join(', ')}`);
}, { ready: 'body', blankCheck: false }));

const TEACHING = 'preset=m-sharpness&hide=settings,runs&engine=cpu&view=experiments';
await check('teaching-link', () => withPage('web-teaching-link', [], `${URL}#${TEACHING}`, async (page) => {
  await page.waitForTimeout(1500);
  const got = { preset: await attr(page, 'data-preset'), view: await attr(page, 'data-view'), hidden: await attr(page, 'data-hidden') };
  const want = { preset: 'm-sharpness', view: 'experiments', hidden: 'runs,settings' };
  if (JSON.stringify(got) !== JSON.stringify(want)) throw new Error(`teaching link: got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`);
  if ((await attr(page, 'data-runs')) !== '4') throw new Error(`the m-sharpness preset has 4 runs, the page ${await attr(page, 'data-runs')}`);
  if (!(await attr(page, 'data-engine')).startsWith('CPU')) throw new Error(`engine=cpu gave "${await attr(page, 'data-engine')}"`);
  const hash = decodeURIComponent(await page.evaluate(() => location.hash));
  if (!hash.includes('hide=runs,settings') || !hash.includes('view=experiments')) throw new Error(`the rewritten hash lost the layout: ${hash}`);
  console.log(`  ${JSON.stringify(got)}; hash ${hash}`);
}));

await check('teaching-link-embed', () => withPage('web-embed', [], `${URL}#preset=label-noise&embed`, async (page) => {
  await page.waitForTimeout(1000);
  const hidden = await attr(page, 'data-hidden');
  if (hidden !== 'presets,runs,settings,status') throw new Error(`embed hid "${hidden}"`);
  await trainingAdvances(page, 2000);
}, { viewport: { width: 640, height: 420 } }));

await check('bad-teaching-link', () => withPage('web-bad-teaching-link', [], `${URL}#preset=m-sharpnes&hide=settings,plots`, async (page) => {
  const messages = await attr(page, 'data-messages');
  for (const needle of ['preset=m-sharpnes is not a preset', 'hide=plots is not a panel']) {
    if (!messages.includes(needle)) throw new Error(`no message naming "${needle}": "${messages}"`);
  }
  if ((await attr(page, 'data-hidden')) !== 'settings') throw new Error(`the good part of the link was not applied: hidden "${await attr(page, 'data-hidden')}"`);
}));

await check('phone', () => withPage('web-phone', [], `${URL}#preset=m-sharpness`, async (page) => {
  const width = await page.$eval('#samlab_canvas', (c) => c.getBoundingClientRect().width);
  if (Math.round(width) !== 390) throw new Error(`the canvas is ${width} px wide at a 390 px viewport`);
  await trainingAdvances(page, 2000);
}, { viewport: { width: 390, height: 844 } }));

await check('frames', () => withPage('web-frames', [], `${URL}#preset=m-sharpness&engine=cpu`, async (page) => {
  await trainingAdvances(page, 1000);
  await page.evaluate(() => { window.__samlabFrames.length = 0; });
  await page.waitForTimeout(FRAME_SECONDS * 1000);
  const frames = await page.evaluate(() => window.__samlabFrames.slice());
  if (frames.length < 10) throw new Error(`only ${frames.length} samlab-frame measures in ${FRAME_SECONDS} s`);
  const sorted = [...frames].sort((a, b) => a - b);
  const worst = sorted[sorted.length - 1];
  const p99 = sorted[Math.floor(0.99 * (sorted.length - 1))];
  const over = frames.filter((f) => f > FRAME_TARGET_MS).length;
  const summary = { frames: frames.length, seconds: FRAME_SECONDS, median_ms: sorted[sorted.length >> 1], p99_ms: p99, worst_ms: worst, over_target: over, target_ms: FRAME_TARGET_MS, limit_ms: FRAME_LIMIT_MS, app_worst_ms: Number(await attr(page, 'data-worst-frame-ms')), app_worst_parts: await attr(page, 'data-worst-frame-parts') };
  writeFileSync(join(SHOTS, 'frames.json'), JSON.stringify(summary, null, 2));
  const verdict = worst <= FRAME_TARGET_MS ? 'target met' : `TARGET NOT MET: ${over} of ${frames.length} frames over ${FRAME_TARGET_MS} ms`;
  console.log(`  m-sharpness on the CPU engine: ${frames.length} frames in ${FRAME_SECONDS} s; median ${summary.median_ms.toFixed(1)} ms, p99 ${p99.toFixed(1)} ms, worst ${worst.toFixed(1)} ms in SAM lab's code (app's own count ${summary.app_worst_ms} ms: ${summary.app_worst_parts}); ${verdict}`);
  if (worst > FRAME_LIMIT_MS) throw new Error(`frames: the worst frame spent ${worst.toFixed(1)} ms in SAM lab's code, over ${FRAME_LIMIT_MS} ms (${over} of ${frames.length} frames)`);
}, { initScript: FRAME_OBSERVER }));


// The same four m-SAM runs measuring sharpness every 20 steps (λ_max, tr H, tr V, the m-curve:
// dozens of passes over the evaluation subset each), then a PCA landscape (L): every frame while
// both are computed, from the first measurement to the landscape's last point and the fourth
// measurement after it started. Fails above MEASURING_LIMIT_MS: the whole measurement (or the
// PCA) inside one frame, as before they were cut into pieces, took 550–600 ms on a loaded
// 2-core machine; in pieces the worst frame there was 90–330 ms (the machine's load included).
const MEASURING_LIMIT_MS = Number(process.env.SAMLAB_MEASURING_LIMIT_MS ?? 450);
const MEASURING_LAB = labJson({
  shared: { dataset: { name: 'digits', label_noise: 0.4 }, model: { hidden: [128, 128], activation: 'relu' }, seed: 0, backend: 'cpu' },
  runs: [128, 32, 8, 1].map((m, i) => ({ optimizer: { kind: 'msam', lr: 0.05, momentum: 0.9, weight_decay: 0.0005, rho: 0.05, m }, batch: 128, epochs: 60, measure_every: 20, color: i })),
  landscape: { directions: 'pca', grid: 21, range: null },
});
await check('frames-measuring', () => withPage('web-frames-measuring', [], `${URL}#v1:${b64url(JSON.stringify(MEASURING_LAB))}`, async (page) => {
  const count = async () => Number(await attr(page, 'data-measurements'));
  await page.waitForFunction(() => Number(document.querySelector('#samlab_canvas').dataset.measurements) >= 1, null, { timeout: 120_000 });
  await page.evaluate(() => { window.__samlabFrames.length = 0; });
  // Snapshots for the PCA: a few evaluations into training.
  await page.waitForTimeout(3000);
  const before = await count();
  await page.locator('#samlab_canvas').focus();
  await page.keyboard.press('l');
  await page.waitForFunction((n) => {
    const c = document.querySelector('#samlab_canvas').dataset;
    return /^pca (\d+)\/\1$/.test(c.landscape) && Number(c.measurements) >= n;
  }, before + 4, { timeout: 180_000 });
  const frames = await page.evaluate(() => window.__samlabFrames.slice());
  const summary = { ...frameSummary(frames), measurements: (await count()) - before, landscape: await attr(page, 'data-landscape'), app_worst_ms: Number(await attr(page, 'data-worst-frame-ms')), app_worst_parts: await attr(page, 'data-worst-frame-parts'), target_ms: FRAME_TARGET_MS, limit_ms: MEASURING_LIMIT_MS };
  writeFileSync(join(SHOTS, 'frames-measuring.json'), JSON.stringify(summary, null, 2));
  const verdict = summary.worst_ms <= FRAME_TARGET_MS ? 'target met' : `TARGET NOT MET: ${summary.over_target} of ${frames.length} frames over ${FRAME_TARGET_MS} ms`;
  console.log(`  measuring and a PCA landscape (${summary.landscape}, ${summary.measurements} measurements): ${frames.length} frames; median ${summary.median_ms.toFixed(1)} ms, p99 ${summary.p99_ms.toFixed(1)} ms, worst ${summary.worst_ms.toFixed(1)} ms in SAM lab's code (app's own count ${summary.app_worst_ms} ms: ${summary.app_worst_parts}); ${verdict}`);
  if (summary.worst_ms > MEASURING_LIMIT_MS) throw new Error(`frames-measuring: the worst frame spent ${summary.worst_ms.toFixed(1)} ms in SAM lab's code, over ${MEASURING_LIMIT_MS} ms (${summary.over_target} of ${frames.length} frames over the target)`);
}, { initScript: FRAME_OBSERVER }));

/// Serves `dir` on 127.0.0.1 (a free port); returns [url, close]. With `compress`, it answers
/// as hosts such as GitHub Pages do when the browser accepts gzip: the page's files compressed
/// on the wire (Content-Length is then the compressed size), and a `.gz` file with
/// `Content-Encoding: gzip`, so that the browser hands the page the file already decoded.
async function serveDir(dir, { compress = false } = {}) {
  const types = { '.html': 'text/html', '.js': 'text/javascript', '.wasm': 'application/wasm', '.svg': 'image/svg+xml', '.json': 'application/json', '.gz': 'application/gzip' };
  const served = [];
  const server = createServer((req, res) => {
    const path = normalize(join(dir, decodeURIComponent(new globalThis.URL(req.url, 'http://x').pathname)));
    try {
      const file = statSync(path).isDirectory() ? join(path, 'index.html') : path;
      let body = readFileSync(file);
      const headers = { 'Content-Type': types[extname(file)] ?? 'application/octet-stream' };
      if (compress && /gzip/.test(req.headers['accept-encoding'] ?? '')) {
        if (extname(file) !== '.gz') body = gzipSync(body, { level: 6 });
        headers['Content-Encoding'] = 'gzip';
      }
      headers['Content-Length'] = body.length;
      served.push(`${req.url} ${headers['Content-Encoding'] ?? 'identity'}`);
      res.writeHead(200, headers);
      res.end(body);
    } catch {
      res.writeHead(404, { 'Content-Type': 'text/plain' });
      res.end('not found');
    }
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return [`http://127.0.0.1:${server.address().port}/`, () => new Promise((r) => server.close(r)), served];
}

/// The files of the site as `cargo xtask web` wrote them (fetched from URL).
const SITE_FILES = ['index.html', 'bench.html', 'loader.js', 'samlab.js', 'samlab_bg.wasm', 'favicon.svg', 'mnist_5k.csv.gz', 'size.json'];

/// A copy of the served site (fetched from URL) in `sub` of a new directory, with `spoil` applied
/// to its files; returns [the directory, the copy's directory].
async function siteCopy(spoil = () => {}, sub = '') {
  const dir = mkdtempSync(join(tmpdir(), 'samlab-site-'));
  const site = join(dir, sub);
  mkdirSync(site, { recursive: true });
  for (const f of SITE_FILES) {
    writeFileSync(join(site, f), Buffer.from(await (await fetch(`${URL}${f}`)).arrayBuffer()));
  }
  spoil(site);
  return [dir, site];
}

// A published copy: the site in a sub-directory of the host (as GitHub Pages serves a project,
// at /<repository>/), the files compressed on the wire and the MNIST file decoded by the
// browser. The app loads from relative paths, says how far the download is, trains on the
// downloaded MNIST subset, and the bench page's files resolve.
await check('published-copy', async () => {
  const [dir] = await siteCopy(() => {}, 'samlab');
  const [root, close, served] = await serveDir(dir, { compress: true });
  const base = `${root}samlab/`;
  const mnist = labJson({ shared: { dataset: { name: 'mnist5k', label_noise: 0 }, model: { hidden: [32], activation: 'relu' }, seed: 1, backend: 'cpu' }, runs: [labJson().runs[0]] });
  try {
    await withPage('web-published-copy', [], `${base}#v1:${b64url(JSON.stringify(mnist))}`, async (page) => {
      const texts = await page.evaluate(() => window.__samlabLoading);
      if (!texts.some((t) => /^Downloading SAM lab: \d+\.\d MB$/.test(t))) throw new Error(`published-copy: no download progress among ${JSON.stringify(texts)}`);
      if (!texts.includes('Starting SAM lab…')) throw new Error(`published-copy: never said it was starting: ${JSON.stringify(texts)}`);
      await page.waitForFunction(() => !document.querySelector('#samlab_canvas').dataset.messages.includes('still downloading') && Number(document.querySelector('#samlab_canvas').dataset.steps) > 0, null, { timeout: 60_000 });
      await trainingAdvances(page, 2000);
      const state = decodeHash(await page.evaluate(() => location.hash));
      if (state.shared.dataset.name !== 'mnist5k') throw new Error(`published-copy: the lab is on ${state.shared.dataset.name}`);
      for (const f of ['bench.html', 'loader.js', 'favicon.svg']) {
        const status = await page.evaluate(async (u) => (await fetch(u)).status, f);
        if (status !== 200) throw new Error(`published-copy: ${f} relative to the page answered ${status}`);
      }
      const outside = served.filter((s) => !s.startsWith('/samlab/'));
      if (outside.length) throw new Error(`published-copy: the page asked for files outside its directory: ${outside.join(', ')}`);
      if (!served.some((s) => s.startsWith('/samlab/samlab_bg.wasm gzip'))) throw new Error(`published-copy: the module was not sent compressed: ${served.join(', ')}`);
      console.log(`  at /samlab/, gzip on the wire: ${texts.join(' → ')}; trained on mnist5k`);
    }, { initScript: LOADING_OBSERVER });
  } finally {
    await close();
    rmSync(dir, { recursive: true, force: true });
  }
});

for (const [name, spoil, needle] of [
  ['truncated-wasm', (dir) => truncateSync(join(dir, 'samlab_bg.wasm'), 100_000), 'damaged or incomplete'],
  ['missing-wasm', (dir) => rmSync(join(dir, 'samlab_bg.wasm')), 'not on the server (404)'],
]) {
  await check(name, async () => {
    const [dir] = await siteCopy(spoil);
    const [url, close] = await serveDir(dir);
    try {
      await withPage(`web-${name}`, [], url, async (page) => {
        const text = await page.$eval('#loading', (e) => e.textContent);
        if (!text.includes(needle)) throw new Error(`${name}: the page says "${text}", expected "${needle}"`);
        console.log(`  ${name}: "${text}"`);
      }, { ready: 'body[data-load-error]', blankCheck: false });
    } finally {
      await close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

if (failures.length) {
  console.error(`\n${failures.length} browser check(s) failed`);
  process.exit(1);
}
console.log('browser tests passed');
