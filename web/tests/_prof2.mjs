import { chromium } from 'playwright-core';
const url = process.argv[2];
const secs = Number(process.argv[3] ?? 10);
const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: ['--no-sandbox', '--disable-background-networking'], ignoreDefaultArgs: ['--disable-gpu'] });
const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
await page.goto(url, { waitUntil: 'load' });
await page.waitForSelector('#samlab_canvas[data-ready="1"]', { timeout: 90000 });
if (process.env.PRESS) await page.waitForFunction(() => Number(document.querySelector('#samlab_canvas').dataset.measurements) >= 1, null, { timeout: 120000 });
await page.waitForTimeout(3000);
if (process.env.PRESS) { await page.locator('#samlab_canvas').focus(); await page.keyboard.press(process.env.PRESS); }
const cdp = await page.context().newCDPSession(page);
await cdp.send('Profiler.enable');
await cdp.send('Profiler.setSamplingInterval', { interval: 100 });
await cdp.send('Profiler.start');
await page.waitForTimeout(secs * 1000);
const { profile } = await cdp.send('Profiler.stop');
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const parent = new Map();
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
const stack = (id) => { const s = []; for (let k = id; k !== undefined; k = parent.get(k)) s.push(byId.get(k).callFrame.functionName || '(anon)'); return s; };
// segments of consecutive samples whose stack contains SamLabApp::show
let t = profile.startTime; const segs = []; let cur = null;
for (let i = 0; i < profile.samples.length; i++) {
  t += profile.timeDeltas[i];
  const st = stack(profile.samples[i]);
  const inShow = st.some((f) => f.includes('SamLabApp::show'));
  if (inShow) { if (!cur) { cur = { start: t, end: t, stacks: [] }; segs.push(cur); } cur.end = t; cur.stacks.push(st); }
  else if (cur && !st.some((f) => f.includes('SamLabApp'))) cur = null;
}
const disp = (sg) => sg.stacks.filter((st) => !st.some((f) => f.includes('Lab::tick'))).length;
segs.sort((a, b) => disp(b) - disp(a));
console.log('segments', segs.length, 'longest ms', segs.slice(0, 8).map((s) => ((s.end - s.start) / 1000).toFixed(1)).join(' '));
const interesting = (f) => /samlab|egui_plot|galley|Grid::show/i.test(f) && !/closure|call_once|vtable/.test(f);
for (const s of segs.slice(0, 5)) {
  const incl = new Map();
  for (const st of s.stacks) { const seen = new Set(); for (const f of st) { const n = f.replace(/::h[0-9a-f]{16}$/, ''); if (interesting(n) && !seen.has(n)) { seen.add(n); incl.set(n, (incl.get(n) ?? 0) + 1); } } }
  const tot = s.stacks.length;
  console.log(`\n--- ${((s.end - s.start) / 1000).toFixed(1)} ms, ${tot} samples, ${disp(s)} outside tick`);
  console.log([...incl].sort((a, b) => b[1] - a[1]).slice(0, 40).map(([n, c]) => `${(100 * c / tot).toFixed(0).padStart(4)}% ${n.slice(0, 120)}`).join('\n'));
}
await browser.close();
