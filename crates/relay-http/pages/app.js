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
    if (el) el.textContent = t(k) + (extra ? ' ' + extra : '');
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

  // RFC 9725: POST the offer, get 201 + Location + answer.
  async function negotiate(pc, url, token) {
    await pc.setLocalDescription(await pc.createOffer());
    await gathered(pc);
    const r = await fetch(url, {
      method: 'POST',
      headers: { 'Content-Type': 'application/sdp', 'Authorization': 'Bearer ' + token },
      body: pc.localDescription.sdp,
    });
    if (r.status !== 201) throw new Error((await r.text()).trim() || ('HTTP ' + r.status));
    const location = new URL(r.headers.get('Location'), new URL(url, window.location.href)).toString();
    await pc.setRemoteDescription({ type: 'answer', sdp: await r.text() });
    return {
      location,
      async close() {
        try { await fetch(location, { method: 'DELETE', headers: { 'Authorization': 'Bearer ' + token } }); } catch (e) {}
        pc.close();
      },
    };
  }

  function watchBitrate(pc, type, cb) {
    let last = null;
    const timer = setInterval(async () => {
      if (pc.connectionState === 'closed') { clearInterval(timer); return; }
      const stats = await pc.getStats();
      let bytes = 0;
      stats.forEach(s => { if (s.type === type) bytes += (s.bytesSent || s.bytesReceived || 0); });
      const now = performance.now();
      if (last) cb(Math.round((bytes - last.bytes) * 8 / (now - last.t)));
      last = { bytes, t: now };
    }, 2000);
  }

  window.ClassroomRelay = { initLang, setStatus, lessonFromPath, tokenFromQuery, negotiate, watchBitrate, t };
})();
