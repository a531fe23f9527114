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
      // Two-way lesson: the teacher's class list and the classroom's question button.
      class_list: 'Classrooms', open_floor: 'Open floor: a raised hand may speak at once',
      col_school: 'School', col_watching: 'Watching', col_gets: 'Gets', col_link: 'Link',
      col_warnings: 'Warnings', col_hand: 'Hand', col_floor: 'Floor', col_picture: 'Picture',
      show_class: 'Let the teacher see the class (small picture)', camera_needed: 'The camera is not available:',
      yes: 'yes', no: 'no',
      gets_720p: '720p', gets_360p: '360p', gets_180p: '180p',
      gets_slides_voice: 'slides and voice only', gets_voice_thin: 'voice only: link too thin',
      gets_waiting: 'waiting for picture', gets_video: 'video',
      link_kbps: '{v} kbit/s', link_estimate: 'estimate {v} kbit/s', link_loss: 'loss {v} %',
      link_rtt: 'round trip {v} ms',
      warn_voice_breaking: 'voice breaking up', warn_picture_freezing: 'picture keeps freezing',
      hand_raised: 'Hand raised', give: 'Give the floor', take: 'Take the floor back',
      no_schools: 'No classroom has joined yet.',
      list_live: 'Class list is live.', list_offline: 'Class list: no connection to the relay, trying again…',
      hearing: 'Classroom voice:', hear_off: 'Classroom voice: off until the lesson starts.',
      ask: 'Ask a question', lower_hand: 'Lower hand', hand_up: 'Your hand is up: wait for the teacher.',
      speaking: 'You are speaking', handback: 'Hand the floor back',
      mic_needed: 'Allow the microphone to ask a question.', talk: 'Microphone:',
      request_failed: 'The relay did not accept it:',
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
      class_list: 'Классы', open_floor: 'Свободное слово: поднявший руку сразу говорит',
      col_school: 'Школа', col_watching: 'Смотрит', col_gets: 'Получает', col_link: 'Связь',
      col_warnings: 'Предупреждения', col_hand: 'Рука', col_floor: 'Слово', col_picture: 'Изображение',
      show_class: 'Показывать класс учителю (маленькое изображение)', camera_needed: 'Камера недоступна:',
      yes: 'да', no: 'нет',
      gets_720p: '720p', gets_360p: '360p', gets_180p: '180p',
      gets_slides_voice: 'только слайды и голос', gets_voice_thin: 'только голос: связь слишком слабая',
      gets_waiting: 'ждёт изображения', gets_video: 'видео',
      link_kbps: '{v} кбит/с', link_estimate: 'оценка {v} кбит/с', link_loss: 'потери {v} %',
      link_rtt: 'задержка туда-обратно {v} мс',
      warn_voice_breaking: 'голос прерывается', warn_picture_freezing: 'изображение часто замирает',
      hand_raised: 'Поднята рука', give: 'Дать слово', take: 'Забрать слово',
      no_schools: 'Пока ни один класс не подключился.',
      list_live: 'Список классов обновляется.', list_offline: 'Список классов: нет связи с сервером урока, повтор…',
      hearing: 'Голос класса:', hear_off: 'Голос класса: включится, когда начнётся урок.',
      ask: 'Задать вопрос', lower_hand: 'Опустить руку', hand_up: 'Рука поднята: ждите, пока учитель даст слово.',
      speaking: 'Вы говорите', handback: 'Вернуть слово',
      mic_needed: 'Разрешите доступ к микрофону, чтобы задать вопрос.', talk: 'Микрофон:',
      request_failed: 'Сервер урока не принял запрос:',
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
      class_list: 'Сыныптар', open_floor: 'Еркін сөз: қол көтерген сынып бірден сөйлейді',
      col_school: 'Мектеп', col_watching: 'Көріп отыр', col_gets: 'Не алады', col_link: 'Байланыс',
      col_warnings: 'Ескертулер', col_hand: 'Қол', col_floor: 'Сөз', col_picture: 'Сурет',
      show_class: 'Мұғалімге сыныпты көрсету (кішкентай сурет)', camera_needed: 'Камера қолжетімсіз:',
      yes: 'иә', no: 'жоқ',
      gets_720p: '720p', gets_360p: '360p', gets_180p: '180p',
      gets_slides_voice: 'тек слайдтар мен дауыс', gets_voice_thin: 'тек дауыс: байланыс тым әлсіз',
      gets_waiting: 'сурет күтілуде', gets_video: 'бейне',
      link_kbps: '{v} кбит/с', link_estimate: 'бағалау {v} кбит/с', link_loss: 'жоғалту {v} %',
      link_rtt: 'барып-қайту {v} мс',
      warn_voice_breaking: 'дауыс үзіліп жатыр', warn_picture_freezing: 'сурет жиі қатып қалады',
      hand_raised: 'Қол көтерді', give: 'Сөз беру', take: 'Сөзді қайтарып алу',
      no_schools: 'Әзірге бірде-бір сынып қосылған жоқ.',
      list_live: 'Сыныптар тізімі жаңаруда.', list_offline: 'Сыныптар тізімі: сабақ серверімен байланыс жоқ, қайталануда…',
      hearing: 'Сынып дауысы:', hear_off: 'Сынып дауысы: сабақ басталғанда қосылады.',
      ask: 'Сұрақ қою', lower_hand: 'Қолды түсіру', hand_up: 'Қолыңыз көтерулі: мұғалім сөз бергенше күтіңіз.',
      speaking: 'Сіз сөйлеп тұрсыз', handback: 'Сөзді қайтару',
      mic_needed: 'Сұрақ қою үшін микрофонға рұқсат беріңіз.', talk: 'Микрофон:',
      request_failed: 'Сабақ сервері сұрауды қабылдамады:',
    },
  };
  const NAMES = { kk: 'Қазақша', ru: 'Русский', en: 'English' };
  let lang = localStorage.getItem('lang') || (navigator.language || 'kk').slice(0, 2);
  if (!T[lang]) lang = 'kk';
  let lastStatus = ['ready', ''];

  function t(k) { return (T[lang] && T[lang][k]) || T.en[k] || k; }

  // Pages that draw text themselves (the class list) redraw on a language change.
  const onLangChange = [];
  // Status lines besides #status (a second session's), by element id: [key, extra].
  const lines = new Map();

  function apply() {
    document.documentElement.lang = lang;
    document.querySelectorAll('[data-t]').forEach(el => { el.textContent = t(el.dataset.t); });
    setStatus(lastStatus[0], lastStatus[1]);
    lines.forEach(([k, extra], id) => setLine(id, k, extra));
    onLangChange.forEach(f => f());
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

  // A string with {s} takes the extra in place (a number of seconds), others get it appended.
  function format(k, extra) {
    const text = t(k);
    return text.includes('{s}') ? text.replace('{s}', extra) : text + (extra ? ' ' + extra : '');
  }

  function setStatus(k, extra) {
    lastStatus = [k, extra || ''];
    const el = document.getElementById('status');
    if (el) el.textContent = format(k, extra);
    window.__status = k;
  }

  // The same for another status line (element `id`), prefixed with the string `prefix`.
  function setLine(id, k, extra, prefix) {
    const old = lines.get(id);
    prefix = prefix === undefined ? (old ? old[2] : '') : prefix;
    lines.set(id, [k, extra || '', prefix]);
    const el = document.getElementById(id);
    if (el) el.textContent = (prefix ? t(prefix) + ' ' : '') + format(k, extra);
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
  //   opts: { url, token, role: 'teacher'|'classroom'|'hearing' (the teacher's own
  //             watching session: its old session's DELETE goes first, like a classroom's),
  //           build() -> pc,
  //           rate: { type: 'inbound-rtp'|'outbound-rtp', label }  (status every 2 s),
  //           onGiveUp(message),
  //           pcProp: the window property that holds the current connection ('__pc'),
  //           onStatus(key, extra): where the status goes (the page's #status line),
  //           listen: false for a session whose media may stop for good reasons (a
  //             classroom's voice that flows only while it holds the floor): no
  //             reconnect when the relay falls silent, ICE alone tells }
  function keepSession(opts) {
    const pcProp = opts.pcProp || '__pc';
    const status = opts.onStatus || setStatus;
    const listening = opts.listen !== false;
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
          status(st === 'disconnected' || st === 'failed' ? 'reconnecting' : 'conn_' + st);
          if (st === 'connected') {
            clearTimeout(grace); grace = null;
            if (!everConnected) {
              everConnected = true;
              failures = 0;
              console.log('connected');
              if (opts.rate) {
                watchBitrate(pc, opts.rate.type, kbps => { if (!quiet && !ended) status(opts.rate.label, kbps + ' kbit/s'); });
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
        listen = listening && setInterval(async () => {
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
          if (!quiet) { quiet = true; status('reconnecting'); }
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
        window[pcProp] = pc;
        try {
          status(probeFirst || failures ? 'reconnecting' : 'connecting');
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
            status('refused', msg);
            if (opts.onGiveUp) opts.onGiveUp(msg);
            return;
          }
          const ms = jitter(f.ms);
          console.log('attempt failed (' + msg + '); next in ' + ms + ' ms');
          status(f.key, f.key === 'relay_unreachable' ? '' : f.key === 'error' ? msg : String(Math.round(ms / 1000)));
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
      get pc() { return window[pcProp]; },
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

  // The claims of a token (`crt1.<base64url JSON>.<sig>`), read without checking the
  // signature (the relay checks it): what a page needs to know about itself.
  function tokenClaims(token) {
    try {
      const b64 = (token.split('.')[1] || '').replace(/-/g, '+').replace(/_/g, '/');
      const bin = atob(b64 + '='.repeat((4 - b64.length % 4) % 4));
      return JSON.parse(new TextDecoder().decode(Uint8Array.from(bin, c => c.charCodeAt(0))));
    } catch (e) {
      return {};
    }
  }

  // Follow a lesson's class list and floor (Server-Sent Events, `lesson` events):
  // onLesson(json) at once and on every change, onState('live'|'offline'). The
  // browser reconnects by itself after a network error; after a refusal (an HTTP
  // error, for example before anyone is in the lesson) it does not, so open again.
  function followLesson(lesson, token, onLesson, onState) {
    const url = '/api/lessons/' + encodeURIComponent(lesson) + '/events?token=' + encodeURIComponent(token);
    let es = null, closed = false, timer = null;
    const open = () => {
      if (closed) return;
      es = new EventSource(url);
      es.addEventListener('lesson', ev => {
        let data;
        try { data = JSON.parse(ev.data); } catch (e) { console.log('bad lesson event: ' + ev.data); return; }
        if (onState) onState('live');
        onLesson(data);
      });
      es.onerror = () => {
        if (onState) onState('offline');
        if (es.readyState === EventSource.CLOSED && !closed) {
          es = null;
          clearTimeout(timer);
          timer = setTimeout(open, 2000);
        }
      };
    };
    open();
    return { close() { closed = true; clearTimeout(timer); if (es) es.close(); es = null; } };
  }

  // POST a JSON body with the token; resolves with the JSON answer, rejects with an
  // HttpError carrying the relay's reason.
  async function postJson(url, token, body) {
    const r = await fetchWithin(url, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'Authorization': 'Bearer ' + token },
      body: JSON.stringify(body),
    }, POST_TIMEOUT_MS);
    const text = await r.text();
    if (r.status !== 200) throw new HttpError(r.status, r.status + ' ' + text.trim());
    try { return JSON.parse(text); } catch (e) { return null; }
  }

  // A short tone (a hand went up): 880 Hz for 150 ms. window.__beeps counts them.
  let audioCtx = null;
  function beep() {
    window.__beeps = (window.__beeps || 0) + 1;
    try {
      audioCtx = audioCtx || new AudioContext();
      if (audioCtx.state === 'suspended') audioCtx.resume();
      const osc = audioCtx.createOscillator(), gain = audioCtx.createGain();
      osc.type = 'sine';
      osc.frequency.value = 880;
      const now = audioCtx.currentTime;
      gain.gain.setValueAtTime(0.25, now);
      gain.gain.exponentialRampToValueAtTime(0.001, now + 0.15);
      osc.connect(gain).connect(audioCtx.destination);
      osc.start(now);
      osc.stop(now + 0.15);
    } catch (e) {
      console.log('no tone: ' + e);
    }
  }
  // Browsers start audio only after a gesture: let any click wake the tone up.
  document.addEventListener('click', () => { if (audioCtx && audioCtx.state === 'suspended') audioCtx.resume(); });

  function onLang(f) { onLangChange.push(f); }

  window.ClassroomRelay = {
    initLang, setStatus, setLine, lessonFromPath, tokenFromQuery, negotiate, keepSession, watchBitrate, t,
    tokenClaims, followLesson, postJson, beep, onLang,
  };
})();
