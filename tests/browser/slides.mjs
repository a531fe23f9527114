// The classroom stage with slides: the teacher shares a screen (Chromium's fake
// capture); the classroom page must show the slides and move the camera to a corner.
// (Without slides the camera fills the stage: checked in e2e.mjs.)
//
// usage: node slides.mjs <base-url> <lesson> <teacher-token> <classroom-token>
import { launch, failWith, waitFor, openClassroom } from './lib.mjs';

const [base, lesson, teacherToken, classToken] = process.argv.slice(2);
if (!base || !lesson || !teacherToken || !classToken) {
  console.error('usage: node slides.mjs <base-url> <lesson> <teacher-token> <classroom-token>');
  process.exit(2);
}
const deadline = setTimeout(() => { console.error('slides: timed out after 90 s'); process.exit(1); }, 90_000);
const browser = await launch(base);
const fail = (msg) => failWith([browser], msg);

const teacher = await (await browser.newContext()).newPage();
await teacher.goto(`${base}/teach/${lesson}?token=${encodeURIComponent(teacherToken)}`);
await teacher.check('#share');
await teacher.click('#start');
await waitFor(teacher, () => window.__pc && window.__pc.connectionState === 'connected', 'teacher did not connect', fail);
const sent = await teacher.evaluate(() => window.__pc.getTransceivers().filter(t => t.sender.track && t.sender.track.kind === 'video').length);
if (sent < 2) await fail(`the teacher sends ${sent} video tracks, want camera and screen`);

const c = await openClassroom(browser, base, lesson, classToken);
await waitFor(c, () => {
  const s = document.getElementById('screen');
  return !s.classList.contains('hidden') && s.videoWidth > 0
    && document.getElementById('camera').classList.contains('pip');
}, 'the classroom did not show the slides with the camera in a corner', fail);
const layout = await c.evaluate(() => ({
  slides_width: document.getElementById('screen').videoWidth,
  camera_in_corner: document.getElementById('camera').classList.contains('pip'),
}));
console.log(JSON.stringify(layout));
await teacher.click('#stop');
await browser.close();
clearTimeout(deadline);
console.log('slides PASS');
