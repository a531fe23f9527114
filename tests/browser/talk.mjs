// Browser check of the two-way lesson: a classroom asks a question, the teacher
// gives it the floor, the teacher and the other classrooms hear it.
//
// The teacher page publishes (fake devices) and opens its hearing session; three
// classroom pages watch. The teacher's class list must show the three schools
// watching; classroom 2 raises its hand, the teacher sees it and gives the floor;
// then the teacher's hearing session and classroom 1's second audio stream receive
// classroom 2's voice, classroom 2's own second audio stream does not, and
// classroom 2 shows "You are speaking". When the teacher takes the floor back, the
// voice stops.
//
// usage: node talk.mjs <base-url> <lesson> <teacher-token> <class-token-1> <class-token-2> <class-token-3>
import { launch, failWith, sleep, waitFor, startTeacher, openClassroom, claims, audioStreams } from './lib.mjs';

const [base, lesson, teacherToken, ...classTokens] = process.argv.slice(2);
if (!base || !lesson || !teacherToken || classTokens.length !== 3) {
  console.error('usage: node talk.mjs <base-url> <lesson> <teacher-token> <class-token-1> <class-token-2> <class-token-3>');
  process.exit(2);
}
const deadline = setTimeout(() => { console.error('talk FAIL: timed out after 150 s'); process.exit(1); }, 150_000);

const browser = await launch(base);
const schools = classTokens.map(t => claims(t).school);
const [s1, s2] = schools;

// What the relay says about the lesson now (for failure messages).
async function lessonJson() {
  try {
    const r = await fetch(`${base}/api/lessons/${encodeURIComponent(lesson)}`, { headers: { Authorization: `Bearer ${teacherToken}` } });
    return `GET /api/lessons/${lesson}: ${r.status} ${(await r.text()).trim()}`;
  } catch (e) {
    return `GET /api/lessons/${lesson}: ${e}`;
  }
}
const text = (page, id) => page.evaluate((id) => (document.getElementById(id) || {}).textContent || '', id);
const fail = async (msg) => failWith([browser], `${msg}\n  ${await lessonJson()}`);

// Poll an async condition every 250 ms for `ms`; true when it held.
async function until(cond, ms) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await cond()) return true;
    await sleep(250);
  }
  return false;
}

const rowOf = (id) => `#class-list tr[data-school="${id}"]`;
const rows = () => teacher.$$eval('#class-list tbody tr', trs => trs.map(tr => ({
  school: tr.dataset.school, watching: tr.dataset.watching === '1', gets: tr.dataset.gets,
  classes: tr.className, says: [...tr.cells].map(c => c.innerText.trim()).join(' | '),
})));
const visible = (page, sel) => page.evaluate((sel) => {
  const el = document.querySelector(sel);
  return !!el && getComputedStyle(el).display !== 'none' && el.getClientRects().length > 0;
}, sel);

// --- The lesson starts: teacher on air, its hearing session up, three classrooms watching.
const teacher = await startTeacher(browser, base, lesson, teacherToken, fail);
console.log('teacher connected');
await waitFor(teacher, () => window.__hearPc && window.__hearPc.connectionState === 'connected',
  'the teacher\'s hearing session (WHEP with the teacher token) did not connect', async (m) =>
    fail(`${m}; hearing line: ${await text(teacher, 'hear-status')}`));
console.log('teacher hearing session connected');

const classes = [];
// Classroom 3 also lets the teacher see the class (a small camera picture).
for (const [i, tok] of classTokens.entries()) {
  classes.push(await openClassroom(browser, base, lesson, tok, i === 2 ? '&picture=1' : ''));
}
for (const [i, p] of classes.entries()) {
  await waitFor(p, () => window.__pc && window.__pc.connectionState === 'connected', `classroom ${i + 1} did not connect`, fail);
}
console.log('3 classrooms connected');

const listed = await until(async () => {
  const r = await rows();
  return schools.every(id => r.some(x => x.school === id && x.watching && x.gets && x.gets !== 'waiting'));
}, 30_000);
const listRows = await rows();
for (const r of listRows) console.log(`class list: ${r.says}`);
if (!listed) {
  await fail(`the teacher's class list did not show ${schools.join(', ')} watching with a picture within 30 s: `
    + `${JSON.stringify(listRows)}; list line: ${await text(teacher, 'list-status')}`);
}

// --- Classroom 3's picture is on its row of the teacher page, and only there.
const pictureShown = await until(() => teacher.evaluate(([sel, others]) => {
  const v = document.querySelector(sel + ' video.pic');
  const shown = !!v && !v.classList.contains('hidden') && v.videoWidth > 0;
  const elsewhere = others.some(o => {
    const w = document.querySelector(o + ' video.pic');
    return w && !w.classList.contains('hidden');
  });
  return shown && !elsewhere;
}, [rowOf(schools[2]), [rowOf(schools[0]), rowOf(s2)]]), 30_000);
const pictureFrames = await teacher.evaluate(async () => {
  let n = 0;
  (await window.__hearPc.getStats()).forEach(r => { if (r.type === 'inbound-rtp' && r.kind === 'video') n += r.framesDecoded || 0; });
  return n;
});
if (!pictureShown || pictureFrames < 1) {
  await fail(`the teacher page did not show ${schools[2]}'s picture on its row alone within 30 s `
    + `(frames decoded on the hearing session: ${pictureFrames}); rows: ${JSON.stringify(await rows())}`);
}
console.log(`picture of ${schools[2]}: ${pictureFrames} frames decoded on the teacher's hearing session`);

// --- Classroom 2 asks a question.
const [c1, c2, c3] = classes;
const beepsBefore = await teacher.evaluate(() => window.__beeps || 0);
const askedAt = Date.now();
await c2.click('#ask');
const handShown = await until(() => teacher.evaluate((sel) => {
  const tr = document.querySelector(sel);
  const hand = tr && tr.querySelector('.hand');
  return !!hand && tr.classList.contains('raised') && getComputedStyle(hand).display !== 'none';
}, rowOf(s2)), 3_000);
const handMs = Date.now() - askedAt;
if (!handShown) {
  await fail(`the teacher's row of ${s2} did not show a raised hand within 3 s of #ask; row: `
    + `${JSON.stringify((await rows()).find(r => r.school === s2))}; classroom 2 says: ${await text(c2, 'talk-status')}`);
}
const beeps = (await teacher.evaluate(() => window.__beeps || 0)) - beepsBefore;
if (beeps < 1) await fail('no tone on the teacher page when the hand went up');
console.log(`hand shown on the teacher page after ${handMs} ms`);
await waitFor(c2, () => window.__talkPc && window.__talkPc.connectionState === 'connected',
  'classroom 2\'s talk session (POST /talk) did not connect', async (m) =>
    fail(`${m}; classroom 2 says: ${await text(c2, 'talk-status')}`));

// --- The teacher gives classroom 2 the floor.
async function sample() {
  const [t, a1, a2, a3, talk] = await Promise.all([
    audioStreams(teacher, '__hearPc'), audioStreams(c1), audioStreams(c2), audioStreams(c3), audioStreams(c2, '__talkPc'),
  ]);
  const rx = (s, i) => (s[i] || { packetsReceived: 0 }).packetsReceived;
  return {
    teacher_hears: rx(t, 0), c1_teacher_voice: rx(a1, 0), c1_floor: rx(a1, 1), c3_floor: rx(a3, 1),
    c2_own_floor: rx(a2, 1), c2_talk_sent: (talk[0] || { packetsSent: 0 }).packetsSent,
    directions: { teacher_hear: t.map(s => s.direction), c1: a1.map(s => s.direction), c2_talk: talk.map(s => s.direction) },
  };
}
const growth = (a, b) => Object.fromEntries(Object.keys(a).filter(k => k !== 'directions').map(k => [k, b[k] - a[k]]));

const gaveAt = Date.now();
await teacher.click(`${rowOf(s2)} .give`);
let floorGrowth = null, speaking = false, heard = false, floorMs = null, lastB = null;
while (Date.now() - gaveAt <= 6_000) {
  const a = await sample();
  await sleep(2000);
  const b = await sample();
  lastB = b;
  floorGrowth = growth(a, b);
  speaking = await visible(c2, '#speaking') && await visible(c2, '#handback');
  if (floorGrowth.teacher_hears >= 40 && floorGrowth.c1_floor >= 40 && floorGrowth.c1_teacher_voice > 0 && speaking) {
    heard = true;
    floorMs = Date.now() - gaveAt;
    break;
  }
}
console.log(`with the floor: packets in 2 s ${JSON.stringify(floorGrowth)}; directions ${JSON.stringify(lastB.directions)}`);
if (!heard) {
  const why = [];
  if (floorGrowth.c2_talk_sent < 40) why.push(`classroom 2 itself sent only ${floorGrowth.c2_talk_sent} packets on /talk (page sends nothing?)`);
  if (floorGrowth.teacher_hears < 40) why.push(`teacher's hearing session got ${floorGrowth.teacher_hears} packets in 2 s (want >= 40)`);
  if (floorGrowth.c1_floor < 40) why.push(`classroom 1's second audio got ${floorGrowth.c1_floor} packets in 2 s (want >= 40)`);
  if (floorGrowth.c1_teacher_voice <= 0) why.push('classroom 1 no longer gets the teacher\'s voice');
  if (!speaking) why.push('classroom 2 does not show #speaking and #handback');
  await fail(`within 8 s of giving ${s2} the floor: ${why.join('; ')}; directions ${JSON.stringify(lastB.directions)}; `
    + `teacher row: ${JSON.stringify((await rows()).find(r => r.school === s2))}`);
}
if (floorGrowth.c2_own_floor >= 10) {
  await fail(`classroom 2 hears itself: its second audio got ${floorGrowth.c2_own_floor} packets in 2 s while it held the floor`);
}
const floorRows = await rows();
const floorRow = floorRows.find(r => r.school === s2);
if (!/\bfloor\b/.test(floorRow.classes)) await fail(`the row of ${s2} lacks class "floor": ${JSON.stringify(floorRow)}`);

// --- The teacher takes the floor back: the voice stops.
if (!await until(() => visible(teacher, `${rowOf(s2)} .take`), 3_000)) await fail(`no visible .take on the row of ${s2}`);
await teacher.click(`${rowOf(s2)} .take`);
await sleep(1000);
const a = await sample();
await sleep(2000);
const b = await sample();
const afterTake = growth(a, b);
console.log(`after take: packets in 2 s ${JSON.stringify(afterTake)}`);
if (afterTake.teacher_hears >= 10) await fail(`the teacher still hears ${s2} after taking the floor back: ${afterTake.teacher_hears} packets in 2 s`);
if (afterTake.c1_floor >= 10) await fail(`classroom 1 still hears ${s2} after the floor was taken back: ${afterTake.c1_floor} packets in 2 s`);
if (afterTake.c1_teacher_voice <= 0) await fail('classroom 1 lost the teacher\'s voice after the floor was taken back');
if (!await until(async () => !await visible(c2, '#speaking') && await visible(c2, '#ask'), 3_000)) {
  await fail('classroom 2 still shows #speaking (or no #ask) after the floor was taken back');
}
const talkStillUp = await c2.evaluate(() => !!window.__talkPc && window.__talkPc.connectionState === 'connected');
if (!talkStillUp) await fail('classroom 2\'s talk session closed when the floor ended (it should stay open for the next question)');

const summary = {
  rows: listRows.map(r => ({ school: r.school, says: r.says })),
  hand_shown_ms: handMs,
  tones: beeps,
  heard_within_ms: floorMs,
  with_floor_packets_2s: floorGrowth,
  after_take_packets_2s: afterTake,
  talk_session_kept: talkStillUp,
  picture_frames: pictureFrames,
};
console.log(JSON.stringify(summary));
await teacher.click('#stop');
await browser.close();
clearTimeout(deadline);
console.log('talk PASS');
