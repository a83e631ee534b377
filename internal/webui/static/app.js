// callvault staff pages: the little that needs script. Everything works
// without it except the player's extra controls and channel selection;
// the server validates every input again.
'use strict';

// Personnummer and samordningsnummer, checked as typed (Luhn over the last
// ten digits; samordningsnummer have 60 added to the day).
function pnrProblem(value) {
  const s = value.trim();
  if (s === '') return '';
  if (!/^(\d{6}|\d{8})[-+]?\d{4}$/.test(s)) {
    return 'Skriv 10 eller 12 siffror, till exempel 19121212-1212.';
  }
  const d = s.replace(/[-+]/g, '');
  const ten = d.slice(-10);
  const month = Number(ten.slice(2, 4));
  let day = Number(ten.slice(4, 6));
  if (day > 60) day -= 60;
  if (month < 1 || month > 12 || day < 1 || day > 31) {
    return 'Numret innehåller inget giltigt datum.';
  }
  let sum = 0;
  for (let i = 0; i < 9; i++) {
    let v = Number(ten[i]) * (i % 2 === 0 ? 2 : 1);
    sum += v > 9 ? v - 9 : v;
  }
  if ((10 - (sum % 10)) % 10 !== Number(ten[9])) {
    return 'Kontrollsiffran stämmer inte. Kontrollera numret.';
  }
  return '';
}

for (const input of document.querySelectorAll('input[data-pnr]')) {
  const out = document.getElementById(input.getAttribute('aria-describedby').split(' ').pop());
  const check = (final) => {
    const p = pnrProblem(input.value);
    // While typing, complain only once the number is long enough to judge.
    const show = final || input.value.replace(/\D/g, '').length >= 10;
    out.textContent = show ? p : '';
    if (show && p) input.setAttribute('aria-invalid', 'true'); else input.removeAttribute('aria-invalid');
  };
  input.addEventListener('input', () => check(false));
  input.addEventListener('blur', () => check(true));
}

// A decision document's SHA-256, computed here; the file is not sent.
for (const file of document.querySelectorAll('input[data-sha256-for]')) {
  file.addEventListener('change', async () => {
    const target = document.getElementById(file.dataset.sha256For);
    if (!file.files.length || !crypto.subtle) return;
    const sum = await crypto.subtle.digest('SHA-256', await file.files[0].arrayBuffer());
    target.value = Array.from(new Uint8Array(sum), (b) => b.toString(16).padStart(2, '0')).join('');
  });
}

// The player: play/pause, ±10 s, a time bar, and the two channels (caller
// left, nurse right) switched on and off through Web Audio.
const audio = document.getElementById('ljud');
if (audio) {
  const play = document.getElementById('spela');
  const pos = document.getElementById('position');
  const time = document.getElementById('tid');
  const total = Number(document.getElementById('spelare').dataset.seconds) || 0;
  const mmss = (t) => {
    t = Math.max(0, Math.floor(t));
    const h = Math.floor(t / 3600), m = Math.floor(t / 60) % 60, s = t % 60;
    return (h ? h + ':' : '') + String(m).padStart(2, '0') + ':' + String(s).padStart(2, '0');
  };
  const length = () => (isFinite(audio.duration) && audio.duration > 0 ? audio.duration : total);
  const update = () => {
    pos.max = Math.floor(length());
    pos.value = Math.floor(audio.currentTime);
    pos.setAttribute('aria-valuetext', mmss(audio.currentTime));
    time.textContent = mmss(audio.currentTime) + ' / ' + mmss(length());
    play.textContent = audio.paused ? 'Spela' : 'Pausa';
    play.setAttribute('aria-pressed', String(!audio.paused));
  };
  let gains = null;
  const route = () => {
    if (gains || !window.AudioContext) return;
    const ctx = new AudioContext();
    const src = ctx.createMediaElementSource(audio);
    const split = ctx.createChannelSplitter(2);
    const merge = ctx.createChannelMerger(2);
    src.connect(split);
    gains = [0, 1].map((ch) => {
      const g = ctx.createGain();
      split.connect(g, ch);
      // Each selected channel is heard in both ears.
      g.connect(merge, 0, 0);
      g.connect(merge, 0, 1);
      return g;
    });
    merge.connect(ctx.destination);
    applyChannels();
  };
  const applyChannels = () => {
    if (!gains) return;
    [0, 1].forEach((ch) => { gains[ch].gain.value = document.getElementById('kanal-' + ch).checked ? 1 : 0; });
    // What the audio graph passes, for tests and for assistive tech alike.
    document.getElementById('spelare').dataset.heard = gains.map((g) => g.gain.value).join(',');
  };
  document.getElementById('kanal-0').addEventListener('change', applyChannels);
  document.getElementById('kanal-1').addEventListener('change', applyChannels);
  play.addEventListener('click', () => {
    route();
    if (audio.paused) audio.play(); else audio.pause();
  });
  const seek = (t) => { audio.currentTime = Math.min(Math.max(0, t), length()); update(); };
  document.getElementById('bakat').addEventListener('click', () => seek(audio.currentTime - 10));
  document.getElementById('framat').addEventListener('click', () => seek(audio.currentTime + 10));
  pos.addEventListener('input', () => seek(Number(pos.value)));
  for (const ev of ['timeupdate', 'play', 'pause', 'loadedmetadata', 'seeked']) audio.addEventListener(ev, update);
  audio.addEventListener('play', route);
  update();
}
