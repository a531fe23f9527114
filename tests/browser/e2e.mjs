// Browser end-to-end check of a running classroom-relay.
//
// The teacher page publishes Chromium's fake camera + microphone with 3-layer
// simulcast; N classroom pages watch. Passes when every classroom decodes a growing
// number of video frames and receives audio packets, and the teacher sends 3 layers.
//
// usage: node e2e.mjs <base-url> <lesson> <teacher-token> <classroom-token>...
import { chromium } from 'playwright-core';

const [base, lesson, teacherToken, ...classTokens] = process.argv.slice(2);
if (!base || !lesson || !teacherToken || classTokens.length === 0) {
  console.error('usage: node e2e.mjs <base-url> <lesson> <teacher-token> <classroom-token>...');
  process.exit(2);
}
const deadline = setTimeout(() => { console.error('e2e: timed out after 120 s'); process.exit(1); }, 120_000);

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: [
    '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream',
    '--allow-loopback-in-peer-connection', '--autoplay-policy=no-user-gesture-required',
    // Camera and microphone need a secure context; plain http is one only on localhost.
    `--unsafely-treat-insecure-origin-as-secure=${new URL(base).origin}`,
  ],
});
const fail = async (msg) => { console.error('e2e FAIL: ' + msg); await browser.close(); process.exit(1); };

async function stats(page, type, kind) {
  return page.evaluate(async ([type, kind]) => {
    if (!window.__pc) return [];
    const out = [];
    (await window.__pc.getStats()).forEach(s => {
      if (s.type === type && s.kind === kind) out.push({
        rid: s.rid, framesDecoded: s.framesDecoded || 0, packetsReceived: s.packetsReceived || 0,
        framesEncoded: s.framesEncoded || 0, bytesSent: s.bytesSent || 0, frameHeight: s.frameHeight || 0,
        freezeCount: s.freezeCount || 0, totalFreezesDuration: s.totalFreezesDuration || 0,
      });
    });
    return out;
  }, [type, kind]);
}

async function waitFor(page, fn, what, ms = 20_000) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await page.evaluate(fn)) return;
    await new Promise(r => setTimeout(r, 250));
  }
  const shown = await page.evaluate(() => (document.getElementById('status') || {}).textContent);
  await fail(`${what} (page says: ${shown})`);
}

const ctx = await browser.newContext();
const teacher = await ctx.newPage();
teacher.on('console', m => { if (m.type() === 'error') console.error('teacher console:', m.text()); });
await teacher.goto(`${base}/teach/${lesson}?token=${encodeURIComponent(teacherToken)}`);
await teacher.click('#start');
await waitFor(teacher, () => window.__pc && window.__pc.connectionState === 'connected', 'teacher did not connect');
console.log('teacher connected');

const classes = [];
for (const tok of classTokens) {
  const p = await ctx.newPage();
  p.on('console', m => { if (m.type() === 'error') console.error('classroom console:', m.text()); });
  await p.goto(`${base}/class/${lesson}?token=${encodeURIComponent(tok)}&autojoin=1`);
  classes.push(p);
}
for (const [i, p] of classes.entries()) {
  await waitFor(p, () => window.__pc && window.__pc.connectionState === 'connected', `classroom ${i} did not connect`);
}
console.log(`${classes.length} classrooms connected`);

// Let the picture start, then measure growth over 4 s.
await new Promise(r => setTimeout(r, 4000));
const first = await Promise.all(classes.map(p => Promise.all([stats(p, 'inbound-rtp', 'video'), stats(p, 'inbound-rtp', 'audio')])));
await new Promise(r => setTimeout(r, 4000));
const second = await Promise.all(classes.map(p => Promise.all([stats(p, 'inbound-rtp', 'video'), stats(p, 'inbound-rtp', 'audio')])));
const sent = await stats(teacher, 'outbound-rtp', 'video');

const result = { teacher_layers: sent.filter(s => s.bytesSent > 0).map(s => s.rid), classrooms: [] };
for (let i = 0; i < classes.length; i++) {
  const sum = (arr, k) => arr.reduce((a, s) => a + s[k], 0);
  const [v1, a1] = first[i];
  const [v2, a2] = second[i];
  result.classrooms.push({
    frames_decoded: sum(v2, 'framesDecoded'),
    frames_decoded_growth: sum(v2, 'framesDecoded') - sum(v1, 'framesDecoded'),
    frame_height: Math.max(0, ...v2.map(s => s.frameHeight)),
    audio_packets: sum(a2, 'packetsReceived'),
    audio_packets_growth: sum(a2, 'packetsReceived') - sum(a1, 'packetsReceived'),
    freeze_count: sum(v2, 'freezeCount'),
  });
}
console.log(JSON.stringify(result));
if (result.teacher_layers.length < 3) await fail(`teacher sends ${result.teacher_layers.length} simulcast layers, want 3`);
for (const [i, c] of result.classrooms.entries()) {
  if (c.frames_decoded_growth < 20) await fail(`classroom ${i} decoded only ${c.frames_decoded_growth} frames in 4 s`);
  if (c.audio_packets_growth < 100) await fail(`classroom ${i} received only ${c.audio_packets_growth} audio packets in 4 s`);
}
// Stop: the teacher's DELETE ends the lesson for the classrooms' media.
await teacher.click('#stop');
await browser.close();
clearTimeout(deadline);
console.log('e2e PASS');
