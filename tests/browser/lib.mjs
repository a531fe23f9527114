// Helpers shared by the browser end-to-end scripts.
import { chromium } from 'playwright-core';

// Headless Chromium with a fake camera and microphone. `executable` may be a
// wrapper (for example one that enters a network namespace first).
function options(base, executable) {
  return {
    executablePath: executable || process.env.CHROMIUM || '/usr/bin/chromium',
    args: [
      '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream',
      '--allow-loopback-in-peer-connection', '--autoplay-policy=no-user-gesture-required',
      // Camera and microphone need a secure context; plain http is one only on localhost.
      `--unsafely-treat-insecure-origin-as-secure=${new URL(base).origin}`,
    ],
  };
}

export async function launch(base, executable) {
  return chromium.launch(options(base, executable));
}

// The same, with a way to kill its process outright (a classroom PC losing power):
// returns { browser, kill() }.
export async function launchKillable(base, executable) {
  const server = await chromium.launchServer(options(base, executable));
  const browser = await chromium.connect(server.wsEndpoint());
  return { browser, kill: () => server.process().kill('SIGKILL') };
}

// Exit with a failure message after closing every browser given.
export async function failWith(browsers, msg) {
  console.error('e2e FAIL: ' + msg);
  for (const b of browsers) await b.close().catch(() => {});
  process.exit(1);
}

// RTP stats of the page's peer connection (window.__pc) of one type and kind.
export async function stats(page, type, kind) {
  return page.evaluate(async ([type, kind]) => {
    if (!window.__pc) return [];
    const out = [];
    (await window.__pc.getStats()).forEach(s => {
      if (s.type === type && s.kind === kind) out.push({
        rid: s.rid, framesDecoded: s.framesDecoded || 0, packetsReceived: s.packetsReceived || 0,
        framesEncoded: s.framesEncoded || 0, bytesSent: s.bytesSent || 0, frameHeight: s.frameHeight || 0,
        bytesReceived: s.bytesReceived || 0, packetsLost: s.packetsLost || 0,
        concealedSamples: s.concealedSamples || 0, totalSamplesReceived: s.totalSamplesReceived || 0,
        freezeCount: s.freezeCount || 0, totalFreezesDuration: s.totalFreezesDuration || 0,
      });
    });
    return out;
  }, [type, kind]);
}

export const sum = (arr, k) => arr.reduce((a, s) => a + s[k], 0);
export const sleep = (ms) => new Promise(r => setTimeout(r, ms));

// Poll `fn` in the page until it is true, or fail with `what`.
export async function waitFor(page, fn, what, fail, ms = 20_000) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await page.evaluate(fn)) return;
    await sleep(250);
  }
  const shown = await page.evaluate(() => (document.getElementById('status') || {}).textContent);
  await fail(`${what} (page says: ${shown})`);
}

// Console errors of a page, and the lines where it gives a session up or a retry
// fails (a test that did not expect a reconnect should be able to tell).
function logPage(page, who) {
  page.on('console', m => {
    if (m.type() === 'error' || /^(session lost|attempt failed)/.test(m.text())) console.error(`${who} console:`, m.text());
  });
}

// Open the teacher page in `browser` and start publishing.
export async function startTeacher(browser, base, lesson, token, fail) {
  const page = await (await browser.newContext()).newPage();
  logPage(page, 'teacher');
  await page.goto(`${base}/teach/${lesson}?token=${encodeURIComponent(token)}`);
  await page.click('#start');
  await waitFor(page, () => window.__pc && window.__pc.connectionState === 'connected', 'teacher did not connect', fail);
  return page;
}

// Open a classroom page that joins at once.
// `extra`: more query parameters for the page (for example '&picture=1').
export async function openClassroom(browser, base, lesson, token, extra = '') {
  const page = await (await browser.newContext()).newPage();
  logPage(page, 'classroom');
  await page.goto(`${base}/class/${lesson}?token=${encodeURIComponent(token)}&autojoin=1${extra}`);
  return page;
}

// What a classroom page's receivers show: video and audio inbound-rtp summed.
export async function receiving(page) {
  const [v, a] = await Promise.all([stats(page, 'inbound-rtp', 'video'), stats(page, 'inbound-rtp', 'audio')]);
  // Whether the relay's answer kept RED for the voice (Chromium reports the
  // primary codec, Opus, in its stats either way).
  const red = await page.evaluate(() => !!window.__pc && !!window.__pc.remoteDescription
    && /a=rtpmap:\d+ red\/48000/.test(window.__pc.remoteDescription.sdp));
  return {
    frames_decoded: sum(v, 'framesDecoded'),
    frame_height: Math.max(0, ...v.map(s => s.frameHeight)),
    video_bytes: sum(v, 'bytesReceived'),
    freeze_count: sum(v, 'freezeCount'),
    freeze_s: sum(v, 'totalFreezesDuration'),
    audio_packets: sum(a, 'packetsReceived'),
    audio_lost: sum(a, 'packetsLost'),
    audio_concealed: sum(a, 'concealedSamples'),
    audio_samples: sum(a, 'totalSamplesReceived'),
    audio_red: red,
  };
}

// The claims of a relay token (`crt1.<base64url JSON>.<sig>`), unchecked.
export function claims(token) {
  return JSON.parse(Buffer.from(token.split('.')[1] || '', 'base64url').toString('utf8'));
}

// Audio of one of the page's peer connections (window[prop]), one entry per audio
// transceiver in the order the page added them: its mid, negotiated direction and
// RTP packet counts (0 before any packet).
export async function audioStreams(page, prop = '__pc') {
  return page.evaluate(async (prop) => {
    const pc = window[prop];
    if (!pc || pc.connectionState === 'closed') return [];
    const byMid = {};
    (await pc.getStats()).forEach(s => {
      if ((s.type === 'inbound-rtp' || s.type === 'outbound-rtp') && s.kind === 'audio' && s.mid !== undefined) {
        const e = byMid[s.mid] ||= { packetsReceived: 0, packetsSent: 0 };
        e.packetsReceived += s.packetsReceived || 0;
        e.packetsSent += s.packetsSent || 0;
      }
    });
    return pc.getTransceivers()
      .filter(t => t.receiver.track && t.receiver.track.kind === 'audio')
      .map(t => Object.assign({ mid: t.mid, direction: t.currentDirection || t.direction, packetsReceived: 0, packetsSent: 0 },
        byMid[t.mid] || {}));
  }, prop);
}
