// The browser half of the simulator's calibration: a Chromium teacher (camera
// simulcast and slides) on loopback, and one Chromium classroom whose browser runs
// behind the school's emulated links (the test harness starts it through a wrapper
// that enters a network namespace, whose only way to the relay is the shaping
// proxy). For `seconds` after the classroom's first camera frame it records, once
// a second, what the classroom's camera receiver and the teacher's voice show;
// then prints one line `calibrate {JSON}` with what the classroom lived through,
// in the simulator's terms (freezes, frames, layer shares, concealed voice).
//
// usage: CHROMIUM_LIMITED=<wrapper> node calibrate.mjs <teacher-base> <classroom-base>
//          <lesson> <teacher-token> <classroom-token> <seconds>
import { launch, failWith, sleep, waitFor, openClassroom } from './lib.mjs';

const [teacherBase, classBase, lesson, teacherToken, classToken, secondsArg] = process.argv.slice(2);
if (!secondsArg || !process.env.CHROMIUM_LIMITED) {
  console.error('usage: CHROMIUM_LIMITED=<wrapper> node calibrate.mjs <teacher-base> <classroom-base> <lesson> <teacher-token> <classroom-token> <seconds>');
  process.exit(2);
}
const seconds = Number(secondsArg);
const deadline = setTimeout(() => { console.error('calibrate: timed out'); process.exit(1); }, (seconds + 120) * 1000);

const main = await launch(teacherBase);
const shaped = await launch(classBase, process.env.CHROMIUM_LIMITED);
const fail = (msg) => failWith([main, shaped], msg);

const teacher = await (await main.newContext()).newPage();
await teacher.goto(`${teacherBase}/teach/${lesson}?token=${encodeURIComponent(teacherToken)}`);
await teacher.check('#share');
await teacher.click('#start');
await waitFor(teacher, () => window.__pc && window.__pc.connectionState === 'connected', 'teacher did not connect', fail);
console.log('teacher connected');
const c = await openClassroom(shaped, classBase, lesson, classToken);
await waitFor(c, () => window.__pc && window.__pc.connectionState === 'connected', 'classroom did not connect', fail, 60_000);
console.log('classroom connected');

// The classroom page's transceivers: teacher's voice, camera, slides, floor voice.
const sample = () => c.evaluate(async () => {
  const [voice, cam] = window.__pc.getTransceivers();
  const one = async (t) => { let r = {}; (await t.receiver.getStats()).forEach(s => { if (s.type === 'inbound-rtp') r = s; }); return r; };
  const [v, a] = await Promise.all([one(cam), one(voice)]);
  return {
    frames: v.framesDecoded || 0, height: v.frameHeight || 0, freezes: v.freezeCount || 0,
    frozen_s: v.totalFreezesDuration || 0, nacks: v.nackCount || 0, plis: v.pliCount || 0,
    jb_s: v.jitterBufferDelay || 0, jb_n: v.jitterBufferEmittedCount || 0,
    concealed: a.concealedSamples || 0, samples: a.totalSamplesReceived || 0,
  };
});
await waitFor(c, () => {
  const t = window.__pc.getTransceivers()[1];
  return t && t.receiver.track && document.getElementById('camera').videoWidth > 0;
}, 'the classroom showed no camera frame', fail, 60_000);
const samples = [await sample()];
for (let t = 0; t < seconds; t++) {
  await sleep(1000);
  samples.push(await sample());
  if ((t + 1) % 20 === 0) {
    // The jitter buffer's mean delay over these 20 s, beside the running totals.
    const [a, b] = [samples[samples.length - 21], samples[samples.length - 1]];
    const jb = b.jb_n > a.jb_n ? Math.round(1000 * (b.jb_s - a.jb_s) / (b.jb_n - a.jb_n)) : 0;
    // What the relay estimates and sends for the school, and what the teacher sends.
    const st = await (await fetch(`${teacherBase}/api/lessons`)).json().catch(() => ({}));
    const relay = (st.schools || []).map(s => `est=${s.estimate_kbps} budget=${s.budget_kbps} sent=${s.kbps}`).join(' ');
    const l = (st.lessons || [])[0] || { classrooms: [], teacher_tracks: [] };
    const rids = l.classrooms.map(c => c.receiving.map(r => r.rid).join('/')).join(' ');
    const layers = (l.teacher_tracks || []).map(t => t.layers.map(x => `${x.rid}:${x.kbps}`).join('/')).join(' ');
    console.log(`t=${t + 1}s jitter buffer ${jb} ms; relay ${relay} forwards ${rids}; teacher ${layers}; ${JSON.stringify(b)}`);
  }
}
const [first, last] = [samples[0], samples[samples.length - 1]];
// A second counts at the layer its frames had; one without a new frame counts as
// no picture (the simulator's "audio only" covers pauses over 2 s; shorter ones
// are freezes, counted apart).
const share = { '720p': 0, '360p': 0, '180p': 0, none: 0 };
for (let i = 1; i < samples.length; i++) {
  const [a, b] = [samples[i - 1], samples[i]];
  const key = b.frames === a.frames ? 'none' : b.height >= 540 ? '720p' : b.height >= 270 ? '360p' : '180p';
  share[key] += 1 / seconds;
}
for (const k in share) share[k] = +share[k].toFixed(3);
const result = {
  seconds,
  freezes: last.freezes - first.freezes,
  frozen_s: +(last.frozen_s - first.frozen_s).toFixed(2),
  frames: last.frames - first.frames,
  layer_share: share,
  concealed_pct: last.samples > first.samples
    ? +(100 * (last.concealed - first.concealed) / (last.samples - first.samples)).toFixed(2) : 100,
  nacks: last.nacks - first.nacks,
  plis: last.plis - first.plis,
  jitter_buffer_ms: last.jb_n > first.jb_n ? Math.round(1000 * (last.jb_s - first.jb_s) / (last.jb_n - first.jb_n)) : 0,
};
console.log('calibrate ' + JSON.stringify(result));
await teacher.click('#stop');
await main.close();
await shaped.close();
clearTimeout(deadline);
console.log('calibrate PASS');
