// The browser test: the web build, served on 127.0.0.1 (SAMLAB_URL), in headless Chromium.
//
// 1. WebGPU on (SwiftShader): the app starts, announces its engine and training advances
//    (the step counter the page mirrors on the canvas's data-steps, read twice).
// 2. WebGPU on, engine forced to gpu through the link: the GPU engine trains in the browser.
// 3. No WebGPU flag: eframe falls back to WebGL2, the app announces the CPU fallback and trains.
// 4. A link with a config in its hash reproduces that config (read back from the page's URL,
//    which the app rewrites from its own state).
// 5. A malformed link opens the defaults and says what was ignored.
// Every case saves a screenshot and fails on a blank canvas, a panic or an uncaught error.
//
// Run by `cargo xtask test` (which builds, serves and passes the URL); by hand:
//   cargo xtask web && (cargo xtask serve 8080 &) && SAMLAB_URL=http://127.0.0.1:8080/ node browser.mjs

import { chromium } from 'playwright-core';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

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
  if (!h.startsWith('v1:')) throw new Error(`the page's hash is not a v1 lab: ${h.slice(0, 40)}`);
  return JSON.parse(Buffer.from(h.slice(3), 'base64url').toString('utf8'));
}

/// Standard deviation of the grey levels of a PNG (ImageMagick), to tell a blank canvas.
function stddev(png) {
  return parseFloat(execFileSync('identify', ['-format', '%[fx:standard_deviation]', png]).toString());
}

async function withPage(name, flags, url, body) {
  const userData = mkdtempSync(join(tmpdir(), 'samlab-chromium-'));
  const browser = await chromium.launchPersistentContext(userData, {
    executablePath: CHROMIUM,
    headless: true,
    args: [...BASE, ...flags],
    ignoreDefaultArgs: ['--disable-gpu'],
    viewport: { width: 1400, height: 900 },
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
    await page.goto(url, { waitUntil: 'load' });
    await page.waitForSelector('#samlab_canvas[data-ready="1"]', { timeout: 90_000 });
    await body(page);
    const shot = join(SHOTS, `${name}.png`);
    await page.screenshot({ path: shot });
    const sd = stddev(shot);
    if (!(sd > 0.02)) problems.push(`the screenshot ${shot} is blank (standard deviation ${sd})`);
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

const failures = [];
async function check(name, fn) {
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
  console.log(`  renderer ${renderer}; engine "${engine}"; steps ${a} -> ${b}`);
}));

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

if (failures.length) {
  console.error(`\n${failures.length} browser check(s) failed`);
  process.exit(1);
}
console.log('browser tests passed');
