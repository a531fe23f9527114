// Faults a lesson must survive, with real pages (crates/classroom-relay/tests/faults.rs
// drives it and makes the faults):
//   teacher-drop      the teacher's link is cut for CUT_S seconds and comes back: the
//                     teacher page publishes again and every classroom decodes again
//                     within 2 s of the return, no reload.
//   classroom-vanish  one classroom's browser is killed (no DELETE) and rejoins: the
//                     other classrooms decode with no gap over 500 ms throughout (the
//                     part of a gap in which the teacher's browser encoded nothing
//                     is the sender's), until the relay has dropped the vanished session.
//   relay-restart     the relay is killed and started again: the teacher and every
//                     classroom decode again within 5 s of its "listening" line.
//
// The script asks for a fault by printing `@fault NAME` and waits for the harness
// to answer `@done NAME <unix ms>` on stdin (the time the fault took effect).
// Frame times come from each classroom page itself: it samples its own getStats
// every 50 ms and records when framesDecoded grows (across its reconnections).
//
// usage: [CHROMIUM_TEACHER=<wrapper>] node faults.mjs <mode> <teacher-base> <class-base>
//          <lesson> <teacher-token> <classroom-token>...
import { createInterface } from 'node:readline';
import { launch, launchKillable, failWith, sleep, waitFor, startTeacher, openClassroom } from './lib.mjs';

const [mode, teacherBase, classBase, lesson, teacherToken, ...classTokens] = process.argv.slice(2);
if (!['teacher-drop', 'classroom-vanish', 'relay-restart'].includes(mode) || classTokens.length === 0) {
  console.error('usage: node faults.mjs teacher-drop|classroom-vanish|relay-restart <teacher-base> <class-base> <lesson> <teacher-token> <classroom-token>...');
  process.exit(2);
}
const CUT_S = Number(process.env.CUT_S || 10);
const deadline = setTimeout(() => { console.error('faults: timed out'); process.exit(1); }, 150_000);

// The harness's answers, one line each.
const answers = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
async function fault(name) {
  console.log(`@fault ${name}`);
  for (;;) {
    const { value, done } = await answers.next();
    if (done) throw new Error(`no answer to @fault ${name}`);
    const [tag, got, ms] = value.trim().split(/\s+/);
    if (tag === '@done' && got === name) return Number(ms);
  }
}

// Installed in each classroom page: frame times across the page's own reconnections.
function installSampler() {
  if (window.__frames) return;
  window.__frames = [];
  window.__frameConn = [];
  window.__conns = 0;
  window.__ticks = [];
  window.__events = [];
  let pc = null, last = 0, lastOther = '';
  const tick = async () => {
    const cur = window.__pc;
    if (cur && cur.connectionState !== 'closed') {
      let n = 0, other = '';
      (await cur.getStats()).forEach(s => {
        if (s.type !== 'inbound-rtp' || s.kind !== 'video') return;
        n += s.framesDecoded || 0;
        other += `${s.frameHeight || 0}p key ${s.keyFramesDecoded || 0} pli ${s.pliCount || 0} nack ${s.nackCount || 0} lost ${s.packetsLost || 0} `;
      });
      const now = Date.now();
      if (cur !== pc) { pc = cur; last = 0; cur.__id = ++window.__conns; }
      if (n > last) { window.__frames.push(now); window.__frameConn.push(cur.__id); last = n; }
      // What else changed (layer, keyframes, losses), for the failure message.
      if (other !== lastOther) { window.__events.push([now, other]); lastOther = other; }
      window.__ticks.push(now);
    }
    setTimeout(tick, 50);
  };
  tick();
}
// Frame times, optionally only those decoded on connections after the one numbered `after`.
// Installed in the teacher page: when each simulcast layer's framesEncoded grows.
function installTeacherSampler() {
  if (window.__sent) return;
  window.__sent = {};
  window.__limits = [];
  let last = {}, lastLimit = '';
  const tick = async () => {
    const pc = window.__pc;
    if (pc && pc.connectionState !== 'closed') {
      const now = Date.now();
      let limit = '';
      (await pc.getStats()).forEach(s => {
        if (s.type !== 'outbound-rtp' || s.kind !== 'video') return;
        const k = s.rid || '-';
        if ((s.framesEncoded || 0) !== last[k]) { (window.__sent[k] ||= []).push(now); last[k] = s.framesEncoded || 0; }
        limit += `${k}:${s.frameHeight || 0}p/${s.qualityLimitationReason} `;
      });
      if (limit !== lastLimit) { window.__limits.push([now, limit]); lastLimit = limit; }
    }
    setTimeout(tick, 50);
  };
  tick();
}
const frames = (page, after = 0) => page.evaluate((after) => window.__frames.filter((_, i) => window.__frameConn[i] > after), after);
const connId = (page) => page.evaluate(() => (window.__pc && window.__pc.__id) || 0);
const ticks = (page) => page.evaluate(() => window.__ticks.slice());
const firstAfter = (times, t) => times.find(x => x > t);
// The longest gap between decoded frames within [t0, t1] (edges count as frames).
function maxGap(times, t0, t1) {
  const inside = [t0, ...times.filter(x => x > t0 && x < t1), t1];
  let gap = 0, at = t0;
  for (let i = 1; i < inside.length; i++) {
    if (inside[i] - inside[i - 1] > gap) { gap = inside[i] - inside[i - 1]; at = inside[i - 1]; }
  }
  return { gap, at };
}

// How much of [a, b] falls in gaps over 200 ms between a sender's encoded frames
// (`times`).
function senderPause(times, a, b) {
  let paused = 0;
  for (let i = 1; i < times.length; i++) {
    const [x, y] = [times[i - 1], times[i]];
    if (y - x > 200) paused += Math.max(0, Math.min(b, y) - Math.max(a, x));
  }
  return paused;
}

const browsers = [];
const fail = (msg) => failWith(browsers, msg);
const main = await launch(classBase);
browsers.push(main);
// The teacher's own browser (in the teacher's network namespace for teacher-drop).
const teacherBrowser = process.env.CHROMIUM_TEACHER ? await launch(teacherBase, process.env.CHROMIUM_TEACHER) : main;
if (teacherBrowser !== main) browsers.push(teacherBrowser);

// The pages' own log lines (reconnect attempts), timed.
const started = Date.now();
const logConsole = (page, who) => page.on('console', m => {
  if (m.type() !== 'error') console.log(`  [${who} +${((Date.now() - started) / 1000).toFixed(1)} s] ${m.text()}`);
});
const teacher = await startTeacher(teacherBrowser, teacherBase, lesson, teacherToken, fail);
logConsole(teacher, 'teacher');
await teacher.evaluate(installTeacherSampler);
console.log('teacher connected');

// The relay's per-school estimates in the lesson over time (relay-restart).
const schoolOf = (tok) => JSON.parse(Buffer.from(tok.split('.')[1], 'base64url')).school;
const estimates = [];
let polling = true;
async function pollEstimates() {
  while (polling) {
    const st = await fetch(`${classBase}/api/lessons`).then(r => r.json()).catch(() => null);
    if (st) for (const s of st.schools || []) {
      if (s.lesson === lesson && s.estimate_kbps != null) estimates.push({ t: Date.now(), school: s.school, kbps: s.estimate_kbps });
    }
    await sleep(100);
  }
}
const poller = mode === 'relay-restart' ? pollEstimates() : null;

// Where the relay starts each school's estimator: a classroom of each school joins
// CHECK_LESSON, which has no teacher, so nothing moves the estimate from its
// starting point; the relay's figures for it over 1 s, then it leaves (DELETE).
const checkTokens = (process.env.CHECK_TOKENS || '').split(' ').filter(t => t);
async function startingPoints() {
  const pages = [];
  for (const tok of checkTokens) {
    const p = await (await main.newContext()).newPage();
    await p.goto(`${classBase}/class/${process.env.CHECK_LESSON}?token=${encodeURIComponent(tok)}&autojoin=1`);
    pages.push(p);
  }
  for (const p of pages) await waitFor(p, () => window.__pc && window.__pc.connectionState === 'connected', 'a check classroom did not connect', fail);
  // Where the relay started each classroom's estimator (its start_kbps; the
  // estimate itself moves at once and says nothing of the start), and the
  // estimate a moment later beside it.
  const out = {};
  const end = Date.now() + 5000;
  while (Date.now() < end && Object.keys(out).length < checkTokens.length) {
    const st = await fetch(`${classBase}/api/lessons`).then(r => r.json());
    const l = (st.lessons || []).find(l => l.lesson === process.env.CHECK_LESSON);
    for (const c of (l && l.classrooms) || []) {
      if (c.start_kbps != null && !out[c.school]) out[c.school] = [c.start_kbps, c.estimate_kbps];
    }
    await sleep(100);
  }
  for (const p of pages) { await p.click('#leave'); await p.context().close(); }
  return out;
}

async function joinClassroom(browser, tok, i) {
  const p = await openClassroom(browser, classBase, lesson, tok);
  logConsole(p, `classroom ${i}`);
  await waitFor(p, () => window.__pc && window.__pc.connectionState === 'connected', `classroom ${i} did not connect`, fail);
  await p.evaluate(installSampler);
  // A page that reloaded would lose this mark.
  await p.evaluate(() => { window.__mark = window.__mark || Math.random(); });
  return p;
}
// Before the relay has any state: where a school never seen starts.
const coldStarts = checkTokens.length ? await startingPoints() : null;

// The vanishing classroom (the last token) has a browser of its own.
let killable = mode === 'classroom-vanish' ? await launchKillable(classBase) : null;
let spare = killable && killable.browser;
if (spare) browsers.push(spare);
const classes = [];
for (const [i, tok] of classTokens.entries()) {
  classes.push(await joinClassroom(spare && i === classTokens.length - 1 ? spare : main, tok, i));
}
console.log(`${classes.length} classrooms connected`);
const marks = await Promise.all(classes.map(p => p.evaluate(() => window.__mark)));

// Wait until every classroom has decoded a frame in the last 300 ms.
async function allDecoding(pages, what, ms = 15_000) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const now = Date.now();
    const fresh = await Promise.all(pages.map(async p => (await frames(p)).some(t => t > now - 300)));
    if (fresh.every(x => x)) return;
    await sleep(100);
  }
  await fail(what);
}
await allDecoding(classes, 'classrooms do not decode video before the fault');
await sleep(2000);

const result = { mode, classrooms: [] };
if (mode === 'teacher-drop') {
  await teacher.evaluate(() => { window.__oldPc = window.__pc; });
  const cut = await fault('cut');
  await sleep(CUT_S * 1000);
  const back = await fault('restore');
  result.cut_ms = back - cut;
  // Give every page up to 10 s to show a picture again.
  const end = Date.now() + 10_000;
  while (Date.now() < end && (await Promise.all(classes.map(async p => firstAfter(await frames(p), back)))).some(x => !x)) await sleep(200);
  for (const [i, p] of classes.entries()) {
    const f = await frames(p);
    // Frames decoded while the teacher was away prove the cut was real: none after
    // the first second (what was in flight).
    const during = f.filter(t => t > cut + 1000 && t < back).length;
    const first = firstAfter(f, back);
    result.classrooms.push({ frames_during_cut: during, picture_again_ms: first ? first - back : null });
    if (during > 0) await fail(`classroom ${i} decoded ${during} frames while the teacher's link was cut`);
    if (!first) await fail(`classroom ${i} shows no picture within 10 s of the teacher's return`);
  }
  // The teacher page published again (a new connection, the same token); ICE
  // alone may also bring the old connection back after 10 s, which is not it.
  result.teacher_published_again = await teacher.evaluate(() => window.__pc !== window.__oldPc && window.__pc.connectionState === 'connected');
} else if (mode === 'classroom-vanish') {
  const stayers = classes.slice(0, -1);
  const t0 = Date.now();
  const lessons = () => fetch(`${classBase}/api/lessons`).then(r => r.json());
  // How long the relay held forwarded packets (its /metrics histogram): packets
  // held over 0.1 s and over 0.25 s, counted between two snapshots.
  const held = async () => {
    const m = await fetch(`${classBase}/metrics`).then(r => r.text());
    const bucket = (le) => Number((m.match(new RegExp(`classroom_relay_forward_delay_seconds_bucket\\{le="${le}"\\} (\\d+)`)) || [])[1]);
    const all = bucket('\\+Inf');
    return { over_100ms: all - bucket('0.1'), over_250ms: all - bucket('0.25') };
  };
  const held0 = await held();
  // The relay's view of each classroom, in short.
  const relayView = async () => (((await lessons()).lessons || [])[0] || { classrooms: [] }).classrooms.map(c =>
    `${c.session} ${c.school} ${c.receiving.map(r => r.rid).filter(r => r).join('/')} est ${c.estimate_kbps} rtt ${c.rtt_ms} pli ${c.picture_losses} sw ${c.layer_switches}`);
  const school = schoolOf(classTokens[classTokens.length - 1]);
  result.relay_before = await relayView();
  const staleId = result.relay_before.map(l => l.split(' ')).find(([, s]) => s === school)[0];
  await sleep(1000);
  // Power cut: the vanishing classroom's whole browser dies, nothing is sent.
  killable.kill();
  const vanished = Date.now();
  browsers.splice(browsers.indexOf(spare), 1);
  await sleep(3000);
  // The classroom comes back (in a fresh context of the running browser: starting
  // a whole Chromium again would load the shared test machine more than any relay
  // work does).
  const rejoinedAt = Date.now();
  const back = await joinClassroom(main, classTokens[classTokens.length - 1], classTokens.length - 1);
  await allDecoding([back], 'the rejoined classroom does not decode video');
  const rejoined = (await frames(back))[0] || Date.now();
  // Watch on until the relay has forgotten the vanished session (at most 45 s after
  // the kill), and at least 8 s after the rejoin.
  let staleGone = null;
  while (Date.now() < vanished + 45_000) {
    if (!(await relayView()).some(l => l.startsWith(staleId + ' '))) { staleGone = Date.now(); break; }
    await sleep(500);
  }
  await sleep(Math.max(2000, rejoined + 8000 - Date.now()));
  const t1 = Date.now();
  result.stale_session_gone_after_ms = staleGone && staleGone - vanished;
  result.vanished_at_ms = vanished - t0;
  result.rejoin_picture_ms = rejoined - rejoinedAt;
  result.window_ms = t1 - t0;
  for (const [i, p] of stayers.entries()) {
    const g = maxGap(await frames(p), t0, t1);
    const sampler = maxGap(await ticks(p), t0, t1);
    const events = await p.evaluate(() => window.__events.slice());
    const around = events
      .filter(([t]) => t > g.at - 1500 && t < g.at + g.gap + 1500).map(([t, e]) => `${t - t0}: ${e}`);
    // The camera's frame height just before the gap (the tallest of the page's
    // video receivers then: the slides' show 0p without a screen share).
    const before = events.filter(([t]) => t <= g.at).pop();
    const shown = before ? Math.max(0, ...[...before[1].matchAll(/(\d+)p key/g)].map(m => Number(m[1]))) : 0;
    result.classrooms.push({ max_gap_ms: g.gap, gap_at_ms: g.at - t0, sampler_max_gap_ms: sampler.gap, shown_height: shown, around_gap: around });
  }
  result.relay_after = await relayView();
  const held1 = await held();
  result.relay_held_packets = { over_100ms: held1.over_100ms - held0.over_100ms, over_250ms: held1.over_250ms - held0.over_250ms };
  // The teacher's own encoder, for telling a relay freeze from a sender's pause:
  // of a classroom's longest gap, the part in which the teacher's browser encoded
  // no frame of the camera layer that classroom was showing (the teacher's layer
  // of that frame height when the gap began; else the one the relay forwarded at
  // the window's start) is the sender's: on a shared 2-core machine the teacher's
  // browser stops its top layer for a second at times ("bandwidth").
  const sent = await teacher.evaluate(() => window.__sent);
  result.teacher_max_encode_gap_ms = Object.fromEntries(Object.entries(sent).map(([rid, ts]) => [rid, maxGap(ts, t0, t1).gap]));
  result.teacher_layers = (await teacher.evaluate(() => window.__limits)).filter(([t]) => t >= t0).map(([t, l]) => `${t - t0}: ${l}`);
  const limits = await teacher.evaluate(() => window.__limits);
  const ridOfHeight = (t, height) => {
    const l = limits.filter(([lt]) => lt <= t).pop();
    const m = l && [...l[1].matchAll(/(\S+):(\d+)p\//g)].find(m => Number(m[2]) === height);
    return m ? m[1] : null;
  };
  for (const [i, c] of result.classrooms.entries()) {
    const line = result.relay_before.map(l => l.split(' ')).find(([, s]) => s === schoolOf(classTokens[i]));
    const [a, b] = [t0 + c.gap_at_ms, t0 + c.gap_at_ms + c.max_gap_ms];
    const rid = ridOfHeight(a, c.shown_height) || (line && line[2].split('/')[0]);
    c.camera_rid = rid || null;
    c.sender_paused_ms = Math.max(0, ...Object.entries(sent).filter(([r]) => !rid || r === rid)
      .map(([, ts]) => senderPause(ts, a, b)));
    c.relay_gap_ms = c.max_gap_ms - c.sender_paused_ms;
  }
  // The harness judges the gaps (and may run the fault again: see faults.rs).
  console.log('RESULT ' + JSON.stringify(result));

} else {
  // Only what the pages decode on their new connections counts.
  const oldConn = await Promise.all(classes.map(connId));
  await teacher.evaluate(() => { window.__oldPc = window.__pc; });
  const listening = await fault('restart');
  const end = Date.now() + 15_000;
  const teacherUp = () => teacher.evaluate(() => window.__pc !== window.__oldPc && window.__pc.connectionState === 'connected');
  let teacherAt = null;
  while (Date.now() < end) {
    if (!teacherAt && await teacherUp()) teacherAt = Date.now();
    const got = await Promise.all(classes.map(async (p, i) => firstAfter(await frames(p, oldConn[i]), listening)));
    if (teacherAt && got.every(x => x)) break;
    await sleep(100);
  }
  await sleep(2000);
  polling = false;
  await poller;
  result.teacher_connected_ms = teacherAt ? teacherAt - listening : null;
  for (const [i, p] of classes.entries()) {
    const first = firstAfter(await frames(p, oldConn[i]), listening);
    result.classrooms.push({ picture_again_ms: first ? first - listening : null });
  }
  // Each school's first estimates, from the relay's start and from its restart.
  const firsts = (from) => {
    const out = {};
    for (const e of estimates.filter(e => e.t >= from)) (out[e.school] ||= []).length < 5 && out[e.school].push(e.kbps);
    return out;
  };
  // In the lesson itself the first figure seen is often already the estimator's
  // first step from its start (media flows at once): shown, not judged.
  result.lesson_estimates_at_start_kbps = firsts(0);
  result.lesson_estimates_after_restart_kbps = firsts(listening);
  result.start_before_kbps = coldStarts;
  result.start_after_restart_kbps = await startingPoints();
}
const now = await Promise.all(classes.map(p => p.evaluate(() => window.__mark).catch(() => null)));
result.reloaded = mode === 'classroom-vanish' ? now.slice(0, -1).some((m, i) => m !== marks[i]) : now.some((m, i) => m !== marks[i]);
if (mode !== 'classroom-vanish') console.log('RESULT ' + JSON.stringify(result));
if (result.reloaded) await fail('a page was reloaded');
if (mode === 'teacher-drop') {
  if (!result.teacher_published_again) await fail('the teacher page did not publish again after its link came back');
  for (const [i, c] of result.classrooms.entries()) {
    if (c.picture_again_ms > 2000) await fail(`classroom ${i} showed a picture again ${c.picture_again_ms} ms after the teacher's return (want 2000)`);
  }
}
if (mode === 'relay-restart') {
  if (result.teacher_connected_ms == null || result.teacher_connected_ms > 5000) await fail(`teacher page connected again ${result.teacher_connected_ms} ms after the relay answered (want 5000)`);
  for (const [i, c] of result.classrooms.entries()) {
    if (c.picture_again_ms == null || c.picture_again_ms > 5000) await fail(`classroom ${i} decoded again ${c.picture_again_ms} ms after the relay answered (want 5000)`);
  }
}
await teacher.click('#stop');
for (const b of browsers) await b.close();
clearTimeout(deadline);
console.log('faults PASS');
process.exit(0);
