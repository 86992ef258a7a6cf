// Every WGSL entry point compiled by the browser's own WebGPU compiler (Chromium's Tint, through
// SwiftShader), which is stricter than naga: barriers in uniform control flow, uniformity of
// derivatives, reserved words. Each kernel family is compiled as the engine compiles it
// (shaders/common.wgsl, then the family's file); any error or warning from getCompilationInfo,
// or a pipeline that fails to build (createComputePipelineAsync, layout 'auto'), fails the test.
//
// Run by `cargo xtask test` after the browser test (it needs a page served from 127.0.0.1 for
// WebGPU); by hand: SAMLAB_URL=http://127.0.0.1:8080/ node wgsl.mjs

import { chromium } from 'playwright-core';
import { mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const URL = process.env.SAMLAB_URL ?? 'http://127.0.0.1:8080/';
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const SHADERS = new globalThis.URL('../../shaders/', import.meta.url).pathname;

const common = readFileSync(join(SHADERS, 'common.wgsl'), 'utf8');
const families = readdirSync(SHADERS)
  .filter((f) => f.endsWith('.wgsl') && f !== 'common.wgsl')
  .map((f) => {
    const code = `${common}\n${readFileSync(join(SHADERS, f), 'utf8')}`;
    const entries = [...code.matchAll(/@compute[^]*?fn\s+([A-Za-z_][A-Za-z0-9_]*)/g)].map((m) => m[1]);
    return { file: f, code, entries };
  });
const expected = families.reduce((n, f) => n + f.entries.length, 0);
if (families.length === 0 || expected === 0) throw new Error(`no kernels found in ${SHADERS}`);

const userData = mkdtempSync(join(tmpdir(), 'samlab-chromium-wgsl-'));
const browser = await chromium.launchPersistentContext(userData, {
  executablePath: CHROMIUM,
  headless: true,
  args: ['--no-sandbox', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync',
    '--disable-quic', '--enable-unsafe-webgpu', '--enable-features=Vulkan', '--use-vulkan=swiftshader', '--use-angle=vulkan'],
  ignoreDefaultArgs: ['--disable-gpu'],
});
try {
  const page = browser.pages()[0] ?? await browser.newPage();
  await page.goto(URL);
  const report = await page.evaluate(async (families) => {
    if (!navigator.gpu) return { fatal: 'navigator.gpu is missing' };
    const adapter = await navigator.gpu.requestAdapter();
    if (!adapter) return { fatal: 'no WebGPU adapter' };
    const device = await adapter.requestDevice();
    const out = { adapter: adapter.info ? `${adapter.info.vendor} ${adapter.info.architecture} ${adapter.info.description}` : 'unknown', problems: [], compiled: [] };
    for (const f of families) {
      const module = device.createShaderModule({ code: f.code, label: f.file });
      const info = await module.getCompilationInfo();
      for (const m of info.messages) {
        out.problems.push(`${f.file}: ${m.type} at line ${m.lineNum}:${m.linePos}: ${m.message}`);
      }
      for (const entryPoint of f.entries) {
        try {
          await device.createComputePipelineAsync({ layout: 'auto', compute: { module, entryPoint } });
          out.compiled.push(`${f.file}:${entryPoint}`);
        } catch (e) {
          out.problems.push(`${f.file}:${entryPoint}: pipeline failed: ${e.message ?? e}`);
        }
      }
    }
    device.destroy();
    return out;
  }, families);
  if (report.fatal) throw new Error(`WebGPU unavailable for the WGSL check: ${report.fatal}`);
  if (report.problems.length > 0) {
    throw new Error(`the browser's WGSL compiler reported ${report.problems.length} problem(s):\n${report.problems.join('\n')}`);
  }
  if (report.compiled.length !== expected) throw new Error(`compiled ${report.compiled.length} of ${expected} entry points`);
  console.log(`wgsl: ${report.compiled.length} entry points of ${families.length} kernel families compile in Chromium's WebGPU (${report.adapter}) without errors or warnings`);
} finally {
  await browser.close();
}
