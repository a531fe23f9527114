// Browser end-to-end check of a running classroom-relay.
//
// The teacher page publishes Chromium's fake camera + microphone with 3-layer
// simulcast; N classroom pages watch. Passes when every classroom decodes a growing
// number of video frames and receives audio packets, and the teacher sends 3 layers.
//
// usage: node e2e.mjs <base-url> <lesson> <teacher-token> <classroom-token>...
import { launch, failWith, stats, sleep, waitFor, startTeacher, openClassroom, receiving } from './lib.mjs';

const [base, lesson, teacherToken, ...classTokens] = process.argv.slice(2);
if (!base || !lesson || !teacherToken || classTokens.length === 0) {
  console.error('usage: node e2e.mjs <base-url> <lesson> <teacher-token> <classroom-token>...');
  process.exit(2);
}
const deadline = setTimeout(() => { console.error('e2e: timed out after 120 s'); process.exit(1); }, 120_000);

const browser = await launch(base);
const fail = (msg) => failWith([browser], msg);

const teacher = await startTeacher(browser, base, lesson, teacherToken, fail);
console.log('teacher connected');

const classes = [];
for (const tok of classTokens) classes.push(await openClassroom(browser, base, lesson, tok));
for (const [i, p] of classes.entries()) {
  await waitFor(p, () => window.__pc && window.__pc.connectionState === 'connected', `classroom ${i} did not connect`, fail);
}
console.log(`${classes.length} classrooms connected`);

// Let the picture start, then measure growth over 4 s.
await sleep(4000);
const first = await Promise.all(classes.map(receiving));
await sleep(4000);
const second = await Promise.all(classes.map(receiving));
const sent = await stats(teacher, 'outbound-rtp', 'video');

const result = { teacher_layers: sent.filter(s => s.bytesSent > 0).map(s => s.rid), classrooms: [] };
for (let i = 0; i < classes.length; i++) {
  const [a, b] = [first[i], second[i]];
  result.classrooms.push({
    frames_decoded: b.frames_decoded,
    frames_decoded_growth: b.frames_decoded - a.frames_decoded,
    frame_height: b.frame_height,
    audio_packets: b.audio_packets,
    audio_packets_growth: b.audio_packets - a.audio_packets,
    freeze_count: b.freeze_count,
  });
}
console.log(JSON.stringify(result));
if (result.teacher_layers.length < 3) await fail(`teacher sends ${result.teacher_layers.length} simulcast layers, want 3`);
for (const [i, c] of result.classrooms.entries()) {
  if (c.frames_decoded_growth < 20) await fail(`classroom ${i} decoded only ${c.frames_decoded_growth} frames in 4 s`);
  if (c.audio_packets_growth < 100) await fail(`classroom ${i} received only ${c.audio_packets_growth} audio packets in 4 s`);
}
// No slides are shared: every classroom's camera fills the stage (no corner picture
// over a black stage), whatever reaches the slides' m-line.
for (const [i, p] of classes.entries()) {
  const layout = await p.evaluate(() => ({
    camera_in_corner: document.getElementById('camera').classList.contains('pip'),
    slides_shown: !document.getElementById('screen').classList.contains('hidden'),
  }));
  if (layout.camera_in_corner || layout.slides_shown) {
    await fail(`classroom ${i}: no slides are shared, yet the stage shows ${JSON.stringify(layout)}`);
  }
}
// Stop: the teacher's DELETE ends the lesson for the classrooms' media.
await teacher.click('#stop');
await browser.close();
clearTimeout(deadline);
console.log('e2e PASS');
