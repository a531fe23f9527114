// Browser check of per-school link adaptation: one teacher, one classroom on a
// full link and one classroom whose browser runs behind a rate limit (the test
// harness starts it through a wrapper that enters a shaped network namespace).
//
// Passes when, after the relay has had time to settle, the full classroom shows the
// top layer, the limited one a lower layer, both keep decoding video with few
// freezes and both receive continuous audio. With LIMITED_EXPECT=audio-only the
// limited link is too thin for video: it must get the voice alone, whole.
//
// usage: CHROMIUM_LIMITED=<wrapper> node shaped.mjs <full-base> <limited-base> <lesson>
//          <teacher-token> <full-token> <limited-token> [settle-s] [window-s]
import { launch, failWith, stats, sleep, waitFor, startTeacher, openClassroom, receiving } from './lib.mjs';

const [fullBase, limitedBase, lesson, teacherToken, fullToken, limitedToken, settleArg, windowArg] = process.argv.slice(2);
if (!limitedToken || !process.env.CHROMIUM_LIMITED) {
  console.error('usage: CHROMIUM_LIMITED=<wrapper> node shaped.mjs <full-base> <limited-base> <lesson> <teacher-token> <full-token> <limited-token> [settle-s] [window-s]');
  process.exit(2);
}
const settleS = Number(settleArg || 20);
const windowS = Number(windowArg || 10);
const deadline = setTimeout(() => { console.error('shaped: timed out'); process.exit(1); }, (settleS + windowS + 90) * 1000);

const main = await launch(fullBase);
const limited = await launch(limitedBase, process.env.CHROMIUM_LIMITED);
const fail = (msg) => failWith([main, limited], msg);

const teacher = await startTeacher(main, fullBase, lesson, teacherToken, fail);
console.log('teacher connected');
const full = await openClassroom(main, fullBase, lesson, fullToken);
const thin = await openClassroom(limited, limitedBase, lesson, limitedToken);
for (const [name, p] of [['full', full], ['limited', thin]]) {
  await waitFor(p, () => window.__pc && window.__pc.connectionState === 'connected', `${name} classroom did not connect`, fail);
}
console.log('both classrooms connected');

// While the relay settles, log what it estimates and sends per school every 2 s.
for (let t = 0; t < settleS; t += 2) {
  await sleep(2000);
  const st = await (await fetch(`${fullBase}/api/lessons`)).json().catch(() => ({}));
  const line = (st.schools || []).map(s => `${s.school} est=${s.estimate_kbps} budget=${s.budget_kbps} sent=${s.kbps}`).join(' | ');
  const rids = ((st.lessons || [])[0] || { classrooms: [] }).classrooms.map(c => c.school + ':' + c.receiving.map(r => r.rid).join('/')).join(' ');
  const layers = (((st.lessons || [])[0] || {}).teacher_tracks || []).map(t => t.layers.map(l => `${l.rid}:${l.kbps}`).join('/')).join(' ');
  console.log(`t=${t + 2}s ${line} ${rids} teacher ${layers}`);
}
const [f1, t1] = await Promise.all([receiving(full), receiving(thin)]);
await sleep(windowS * 1000);
const [f2, t2] = await Promise.all([receiving(full), receiving(thin)]);
const sent = await stats(teacher, 'outbound-rtp', 'video');

const growth = (a, b) => ({
  frame_height: b.frame_height,
  frames_per_s: (b.frames_decoded - a.frames_decoded) / windowS,
  video_kbps: Math.round((b.video_bytes - a.video_bytes) * 8 / windowS / 1000),
  freezes: b.freeze_count - a.freeze_count,
  frozen_s: +(b.freeze_s - a.freeze_s).toFixed(3),
  audio_packets_per_s: (b.audio_packets - a.audio_packets) / windowS,
  audio_lost: b.audio_lost - a.audio_lost,
  audio_concealed_pct: b.audio_samples > a.audio_samples
    ? +(100 * (b.audio_concealed - a.audio_concealed) / (b.audio_samples - a.audio_samples)).toFixed(2) : 100,
  audio_red: b.audio_red,
});
const result = {
  teacher_layers: sent.filter(s => s.bytesSent > 0).map(s => `${s.rid}:${s.frameHeight}p`),
  window_s: windowS,
  full: growth(f1, f2),
  limited: growth(t1, t2),
};
console.log(JSON.stringify(result));

// Which layer the relay forwards to each (frame heights alone can mislead: under
// CPU load Chromium may encode its top layer below 720p for a while).
const status0 = await (await fetch(`${fullBase}/api/lessons`)).json();
const rids = (school) => (((status0.lessons || [])[0] || { classrooms: [] }).classrooms
  .filter(c => c.school === school).flatMap(c => c.receiving.map(r => r.rid)).filter(r => r));
const [fullTok0, limitedTok0] = [fullToken, limitedToken].map(t => JSON.parse(Buffer.from(t.split('.')[1], 'base64url')));
const [fullRids, limitedRids] = [rids(fullTok0.school), rids(limitedTok0.school)];
console.log(JSON.stringify({ forwarded: { full: fullRids, limited: limitedRids } }));
const { full: F, limited: L } = result;
// LIMITED_EXPECT=audio-only: the limited link is below voice + the lowest layer.
const audioOnly = process.env.LIMITED_EXPECT === 'audio-only';
if (!fullRids.includes('f')) await fail(`the relay forwards ${fullRids} to the full classroom, not the top layer f`);
if (audioOnly) {
  if (limitedRids.length > 0) await fail(`the relay forwards video (${limitedRids}) on a link too thin for it`);
  if (L.frames_per_s > 1) await fail(`the too-thin classroom still decodes ${L.frames_per_s} frames/s`);
} else {
  if (limitedRids.includes('f')) await fail(`the relay forwards the top layer to the limited classroom`);
  if (L.frame_height > F.frame_height) await fail(`limited classroom shows ${L.frame_height}p, above the full one's ${F.frame_height}p`);
}
for (const [name, c] of [['full', F], ['limited', L]]) {
  const video = !(audioOnly && name === 'limited');
  if (video && c.frames_per_s < 8) await fail(`${name} classroom decoded only ${c.frames_per_s} frames/s`);
  if (video && c.frozen_s > 1.0) await fail(`${name} classroom froze ${c.frozen_s} s in ${windowS} s`);
  if (c.audio_packets_per_s < 45) await fail(`${name} classroom got only ${c.audio_packets_per_s} audio packets/s`);
  // The voice must decode, not only arrive (the relay wraps it in RED for Chromium).
  if (c.audio_concealed_pct > 5) await fail(`${name} classroom concealed ${c.audio_concealed_pct} % of its audio`);
  // Chromium offers audio/red; the relay answers with it and sends the voice with
  // RED redundancy (that it decodes shows in audio_concealed_pct above).
  if (!c.audio_red) await fail(`the relay did not negotiate RED with the ${name} classroom`);
}
// What the relay says of the two school links, while both are connected.
const status = await (await fetch(`${fullBase}/api/lessons`)).json();
const school = (id) => (status.schools || []).find(s => s.school === id) || {};
console.log(JSON.stringify({ relay_schools: status.schools }));
const [fs, ls] = [school(fullTok0.school), school(limitedTok0.school)];
if (!(ls.estimate_kbps < fs.estimate_kbps)) await fail(`relay estimates ${ls.estimate_kbps} kbit/s for the limited school, ${fs.estimate_kbps} for the full one`);
if (audioOnly && !(ls.paused_video_tracks > 0 && /^too thin for video/.test(ls.health))) await fail(`relay reports the too-thin school as: ${ls.health}`);
await teacher.click('#stop');
await main.close();
await limited.close();
clearTimeout(deadline);
console.log('shaped PASS');
