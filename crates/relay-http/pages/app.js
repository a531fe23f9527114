// Shared code of the teacher and classroom pages: language, WHIP/WHEP, status.
(() => {
  const T = {
    en: {
      teacher_title: 'Online lesson — teacher', class_title: 'Online lesson — classroom',
      share_screen: 'Also share my screen (slides)', start: 'Start lesson', stop: 'Stop lesson',
      join: 'Join lesson', leave: 'Leave', fullscreen: 'Full screen', unmute: 'Click to hear the teacher',
      ready: 'Ready.', no_token: 'This link has no token: ask the hub school for the lesson link.',
      asking_devices: 'Allow the camera and microphone…', connecting: 'Connecting…',
      live: 'On air', watching: 'Watching', stopped: 'Lesson stopped.', left: 'You left the lesson.',
      error: 'Problem:', conn_connected: 'Connected.', conn_connecting: 'Connecting…',
      conn_disconnected: 'Connection lost, trying again…', conn_failed: 'Connection failed, retrying…',
      reconnecting: 'Connection lost: reconnecting…',
      relay_unreachable: 'No connection to the relay; still trying…',
      relay_busy: 'The relay is busy; trying again in {s} s.',
      relay_error: 'The relay had a problem; trying again in {s} s.',
      teacher_conflict: 'Another teacher is on air in this lesson; trying again in {s} s.',
      refused: 'The relay refused:',
      conn_closed: 'Closed.', conn_new: 'Starting…',
    },
    ru: {
      teacher_title: 'Онлайн-урок — учитель', class_title: 'Онлайн-урок — класс',
      share_screen: 'Показать также экран (слайды)', start: 'Начать урок', stop: 'Завершить урок',
      join: 'Подключиться к уроку', leave: 'Выйти', fullscreen: 'Во весь экран', unmute: 'Нажмите, чтобы слышать учителя',
      ready: 'Готово.', no_token: 'В ссылке нет токена: попросите ссылку на урок в опорной школе.',
      asking_devices: 'Разрешите доступ к камере и микрофону…', connecting: 'Подключение…',
      live: 'В эфире', watching: 'Идёт просмотр', stopped: 'Урок завершён.', left: 'Вы вышли из урока.',
      error: 'Ошибка:', conn_connected: 'Подключено.', conn_connecting: 'Подключение…',
      conn_disconnected: 'Связь прервалась, пробуем снова…', conn_failed: 'Не удалось подключиться, повтор…',
      reconnecting: 'Связь потеряна: переподключение…',
      relay_unreachable: 'Нет связи с сервером урока; продолжаем попытки…',
      relay_busy: 'Сервер урока занят; новая попытка через {s} с.',
      relay_error: 'Ошибка на сервере урока; новая попытка через {s} с.',
      teacher_conflict: 'В этом уроке уже ведёт эфир другой учитель; новая попытка через {s} с.',
      refused: 'Сервер урока отказал:',
      conn_closed: 'Закрыто.', conn_new: 'Запуск…',
    },
    kk: {
      teacher_title: 'Онлайн сабақ — мұғалім', class_title: 'Онлайн сабақ — сынып',
      share_screen: 'Экранды да көрсету (слайдтар)', start: 'Сабақты бастау', stop: 'Сабақты аяқтау',
      join: 'Сабаққа қосылу', leave: 'Шығу', fullscreen: 'Толық экран', unmute: 'Мұғалімді есту үшін басыңыз',
      ready: 'Дайын.', no_token: 'Сілтемеде токен жоқ: тірек мектептен сабақ сілтемесін сұраңыз.',
      asking_devices: 'Камера мен микрофонға рұқсат беріңіз…', connecting: 'Қосылуда…',
      live: 'Эфирде', watching: 'Көрсетілуде', stopped: 'Сабақ аяқталды.', left: 'Сіз сабақтан шықтыңыз.',
      error: 'Қате:', conn_connected: 'Қосылды.', conn_connecting: 'Қосылуда…',
      conn_disconnected: 'Байланыс үзілді, қайта қосылуда…', conn_failed: 'Қосылу сәтсіз, қайталануда…',
      reconnecting: 'Байланыс үзілді: қайта қосылуда…',
      relay_unreachable: 'Сабақ серверімен байланыс жоқ; әрекет жалғасуда…',
      relay_busy: 'Сабақ сервері бос емес; {s} с кейін қайталаймыз.',
      relay_error: 'Сабақ серверінде ақау; {s} с кейін қайталаймыз.',
      teacher_conflict: 'Бұл сабақта басқа мұғалім эфирде; {s} с кейін қайталаймыз.',
      refused: 'Сабақ сервері қабылдамады:',
      conn_closed: 'Жабық.', conn_new: 'Іске қосылуда…',
    },
  };
  const NAMES = { kk: 'Қазақша', ru: 'Русский', en: 'English' };
  let lang = localStorage.getItem('lang') || (navigator.language || 'kk').slice(0, 2);
  if (!T[lang]) lang = 'kk';
  let lastStatus = ['ready', ''];

  function t(k) { return (T[lang] && T[lang][k]) || T.en[k] || k; }

  function apply() {
    document.documentElement.lang = lang;
    document.querySelectorAll('[data-t]').forEach(el => { el.textContent = t(el.dataset.t); });
    setStatus(lastStatus[0], lastStatus[1]);
  }

  function initLang() {
    const sel = document.getElementById('lang');
    for (const k of Object.keys(NAMES)) {
      const o = document.createElement('option');
      o.value = k; o.textContent = NAMES[k]; sel.appendChild(o);
    }
    sel.value = lang;
    sel.onchange = () => { lang = sel.value; localStorage.setItem('lang', lang); apply(); };
    apply();
  }

  function setStatus(k, extra) {
    lastStatus = [k, extra || ''];
    const el = document.getElementById('status');
    // A string with {s} takes the extra in place (a number of seconds), others get it appended.
    const text = t(k);
    if (el) el.textContent = text.includes('{s}') ? text.replace('{s}', extra) : text + (extra ? ' ' + extra : '');
    window.__status = k;
  }

  function lessonFromPath() { return decodeURIComponent(location.pathname.split('/').filter(Boolean)[1] || ''); }
  function tokenFromQuery() { return new URLSearchParams(location.search).get('token') || ''; }

  // All candidates go in the offer: the relay does not take trickled ones (PATCH).
  function gathered(pc) {
    if (pc.iceGatheringState === 'complete') return Promise.resolve();
    return new Promise(res => {
      const done = () => { if (pc.iceGatheringState === 'complete') res(); };
      pc.addEventListener('icegatheringstatechange', done);
      setTimeout(res, 2000);
    });
  }

  // How long to wait for the relay's answer to an offer, for a probe, for ICE to
  // connect after the answer, and how long ICE may stay `disconnected` before the
  // page gives the session up and publishes or watches again.
  const POST_TIMEOUT_MS = 10000, PROBE_TIMEOUT_MS = 4000, CONNECT_TIMEOUT_MS = 10000;
  const DISCONNECTED_GRACE_MS = 2000;
  // Waits between failed attempts: 1 s, 2 s, then every 2 s; a 409 (another teacher
  // on air) every 5 s; Retry-After when the relay sends one.
  const BACKOFF_MS = [1000, 2000], RETRY_MS = 2000, CONFLICT_MS = 5000, MAX_WAIT_MS = 300000;
  // While the relay does not answer at all, probe it (OPTIONS on the endpoint) this often.
  const PROBE_EVERY_MS = 1000;
  // A connection that heard from the relay without pause and then hears nothing
  // for SILENCE_MS (checked every LISTEN_EVERY_MS) asks whether the relay answers.
  const SILENCE_MS = 2000, LISTEN_EVERY_MS = 500;

  class HttpError extends Error {
    constructor(status, message, retryAfterMs) {
      super(message || ('HTTP ' + status));
      this.status = status;
      this.retryAfterMs = retryAfterMs;
    }
  }

  // Retry-After: delay-seconds or an HTTP date (RFC 9110 §10.2.3).
  function retryAfterMs(r) {
    const v = (r.headers.get('Retry-After') || '').trim();
    if (!v) return null;
    const ms = /^\d+$/.test(v) ? Number(v) * 1000 : Date.parse(v) - Date.now();
    return Number.isFinite(ms) ? Math.min(Math.max(ms, 0), MAX_WAIT_MS) : null;
  }

  function fetchWithin(url, init, ms) {
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(), ms);
    return fetch(url, Object.assign({ signal: ac.signal }, init)).finally(() => clearTimeout(timer));
  }

  // RFC 9725: POST the offer, get 201 + Location + answer.
  async function negotiate(pc, url, token, timeoutMs) {
    await pc.setLocalDescription(await pc.createOffer());
    await gathered(pc);
    const r = await fetchWithin(url, {
      method: 'POST',
      headers: { 'Content-Type': 'application/sdp', 'Authorization': 'Bearer ' + token },
      body: pc.localDescription.sdp,
    }, timeoutMs || POST_TIMEOUT_MS);
    if (r.status !== 201) throw new HttpError(r.status, (await r.text()).trim(), retryAfterMs(r));
    const location = new URL(r.headers.get('Location'), new URL(url, window.location.href)).toString();
    await pc.setRemoteDescription({ type: 'answer', sdp: await r.text() });
    const del = () => fetchWithin(location, { method: 'DELETE', headers: { 'Authorization': 'Bearer ' + token } }, 3000)
      .catch(() => {});
    return {
      location,
      // End the session: DELETE, then close the connection.
      async close() { await del(); pc.close(); },
      // Give a broken session up: close the connection now; the DELETE (which the
      // relay may not answer, or answer 404 after a restart) is the caller's to send.
      drop() { pc.close(); return del; },
    };
  }

  // What to do after a failed attempt: wait `ms` and try again, or give up.
  function afterFailure(e, role, n) {
    const backoff = BACKOFF_MS[n] || RETRY_MS;
    if (e instanceof HttpError) {
      const s = e.status;
      if (s === 429 || s === 503) return { key: 'relay_busy', ms: e.retryAfterMs ?? backoff };
      // 408: the offer's body came too slowly (a bad moment on the link).
      if (s >= 500 || s === 408) return { key: 'relay_error', ms: e.retryAfterMs ?? backoff };
      // The same token publishing again replaces its old session; a 409 means another
      // teacher token holds the lesson, which ends when that session does.
      if (s === 409 && role === 'teacher') return { key: 'teacher_conflict', ms: e.retryAfterMs ?? CONFLICT_MS };
      return { key: 'refused', giveUp: true };
    }
    // fetch rejects with a TypeError (no connection) or an AbortError (timed out).
    const network = e instanceof TypeError || (e && e.name === 'AbortError');
    return { key: network ? 'relay_unreachable' : 'error', ms: backoff, network };
  }

  // Keep one WHIP or WHEP session up until stop(): publish or watch with a fresh
  // RTCPeerConnection from build(); when ICE fails, stays disconnected over
  // DISCONNECTED_GRACE_MS or does not connect, or the relay cannot be reached, try
  // again. A refusal (400, 401, 403, 404, ...) is shown and not retried.
  //   opts: { url, token, role: 'teacher'|'classroom', build() -> pc,
  //           rate: { type: 'inbound-rtp'|'outbound-rtp', label }  (status every 2 s),
  //           onGiveUp(message) }
  function keepSession(opts) {
    // `stale`: the DELETE of a session given up, not sent yet.
    let stopped = false, session = null, failures = 0, stale = null;
    const wakers = new Set();
    // A wait that stop() cuts short.
    const wait = (ms) => new Promise(res => {
      const done = () => { clearTimeout(timer); wakers.delete(done); res(); };
      const timer = setTimeout(done, ms);
      wakers.add(done);
    });
    // Up to 20 % later, never sooner (Retry-After is a minimum), so that many pages
    // retrying together spread out.
    const jitter = (ms) => Math.round(ms * (1 + 0.2 * Math.random()));

    // Resolves once the relay answers HTTP at all (or on stop). Probes overlap, so a
    // link that comes back is noticed within PROBE_EVERY_MS even when one probe
    // hangs on a lost connection attempt.
    async function reachable() {
      let up = false;
      while (!stopped && !up) {
        fetchWithin(opts.url, { method: 'OPTIONS', cache: 'no-store' }, PROBE_TIMEOUT_MS)
          .then(() => { if (!up) console.log('the relay answers again'); up = true; wakers.forEach(w => w()); }, () => {});
        await wait(jitter(PROBE_EVERY_MS));
      }
    }

    // Resolves when this connection must be replaced, or on stop.
    function watch(pc) {
      return new Promise(res => {
        let grace = null, everConnected = false, ended = false, listen = null;
        // What the relay was heard saying (see below).
        let lastRx = -1, heardAt = Date.now(), streak = 0, chatty = false, probing = false, quiet = false;
        const end = (why) => {
          if (ended) return;
          ended = true;
          clearTimeout(grace); clearTimeout(connectTimer); clearInterval(listen); wakers.delete(onStop);
          res(why);
        };
        const onStop = () => end('stopped');
        wakers.add(onStop);
        const connectTimer = setTimeout(() => { if (!everConnected) end('connect_timeout'); }, CONNECT_TIMEOUT_MS);
        const check = () => {
          const st = pc.connectionState;
          setStatus(st === 'disconnected' || st === 'failed' ? 'reconnecting' : 'conn_' + st);
          if (st === 'connected') {
            clearTimeout(grace); grace = null;
            if (!everConnected) {
              everConnected = true;
              failures = 0;
              console.log('connected');
              if (opts.rate) {
                watchBitrate(pc, opts.rate.type, kbps => { if (!quiet && !ended) setStatus(opts.rate.label, kbps + ' kbit/s'); });
              }
            }
          } else if (st === 'failed') {
            end('failed');
          } else if (st === 'disconnected' && !grace) {
            grace = setTimeout(() => end('disconnected'), DISCONNECTED_GRACE_MS);
          }
        };
        pc.addEventListener('connectionstatechange', check);
        check();
        // ICE calls a connection disconnected only after about 5 s without answers.
        // A relay that was restarted answers HTTP long before: when a connection
        // that heard from the relay all the time (media, RTCP, padding) hears
        // nothing for SILENCE_MS and the relay answers HTTP, the relay has lost
        // this session, so connect again at once.
        listen = setInterval(async () => {
          if (!everConnected || probing) return;
          let rx = 0;
          (await pc.getStats()).forEach(r => { if (r.type === 'transport') rx += r.bytesReceived || 0; });
          const now = Date.now();
          if (rx > lastRx) {
            if (lastRx >= 0) streak++;
            lastRx = rx; heardAt = now;
            if (quiet) { quiet = false; check(); }
            return;
          }
          if (streak > 0) { chatty = streak >= SILENCE_MS / LISTEN_EVERY_MS; streak = 0; }
          if (!chatty || now - heardAt < SILENCE_MS) return;
          if (!quiet) { quiet = true; setStatus('reconnecting'); }
          probing = true;
          const heard = heardAt;
          const answered = await fetchWithin(opts.url, { method: 'OPTIONS', cache: 'no-store' }, PROBE_TIMEOUT_MS)
            .then(() => true, () => false);
          probing = false;
          if (answered && heardAt === heard) end('silent');
        }, LISTEN_EVERY_MS);
      });
    }

    async function run() {
      let probeFirst = false;
      while (!stopped) {
        if (probeFirst) {
          await reachable();
          if (stopped) break;
        }
        // A classroom's old session still counts against its school's share until
        // the relay hears the DELETE: send it first. A teacher's new publish
        // replaces its old session by itself (same token); its DELETE goes after.
        if (stale && opts.role !== 'teacher') { await stale(); stale = null; }
        const pc = opts.build();
        window.__pc = pc;
        try {
          setStatus(probeFirst || failures ? 'reconnecting' : 'connecting');
          session = await negotiate(pc, opts.url, opts.token);
          if (stale) { stale(); stale = null; }
        } catch (e) {
          pc.close();
          if (stopped) break;
          const f = afterFailure(e, opts.role, failures++);
          const msg = String((e && e.message) || e);
          if (f.giveUp) {
            stopped = true;
            if (stale) { stale(); stale = null; }
            setStatus('refused', msg);
            if (opts.onGiveUp) opts.onGiveUp(msg);
            return;
          }
          const ms = jitter(f.ms);
          console.log('attempt failed (' + msg + '); next in ' + ms + ' ms');
          setStatus(f.key, f.key === 'relay_unreachable' ? '' : f.key === 'error' ? msg : String(Math.round(ms / 1000)));
          await wait(ms);
          probeFirst = !!f.network;
          continue;
        }
        const why = stopped ? 'stopped' : await watch(pc);
        if (why === 'stopped') break;
        console.log('session lost (' + why + '); connecting again');
        stale = session.drop();
        session = null;
        probeFirst = true;
      }
    }

    const running = run();
    return {
      get pc() { return window.__pc; },
      // End the session (DELETE) and stop trying.
      async stop() {
        stopped = true;
        wakers.forEach(w => w());
        await running.catch(() => {});
        if (stale) { stale(); stale = null; }
        if (session) { const s = session; session = null; await s.close(); }
      },
    };
  }

  // Calls cb(kbit/s) every 2 s while the connection is up, until it is closed.
  function watchBitrate(pc, type, cb) {
    let last = null;
    const timer = setInterval(async () => {
      if (pc.connectionState === 'closed') { clearInterval(timer); return; }
      const stats = await pc.getStats();
      let bytes = 0;
      stats.forEach(s => { if (s.type === type) bytes += (s.bytesSent || s.bytesReceived || 0); });
      const now = performance.now();
      if (last && pc.connectionState === 'connected') cb(Math.round((bytes - last.bytes) * 8 / (now - last.t)));
      last = { bytes, t: now };
    }, 2000);
  }

  window.ClassroomRelay = { initLang, setStatus, lessonFromPath, tokenFromQuery, negotiate, keepSession, watchBitrate, t };
})();
