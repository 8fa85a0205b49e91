// The SMSC simulator page: polls /phones, renders every message with
// textContent (message text is user input), posts /mo and /config.
'use strict';

document.documentElement.classList.add('js');

const POLL_MS = 1500;
const phonesEl = document.getElementById('phones');
const cardTmpl = document.getElementById('card-tmpl');
const carrier = document.getElementById('carrier');
const shown = new Map(); // phone number -> JSON of the messages on its card
let configBusy = false;

function tone(state) {
  switch (state) {
    case 'DELIVRD': return 'ok';
    case 'pending': return 'wait';
    case 'sent': return 'sent';
    case 'EXPIRED': return 'warn';
  }
  return 'bad';
}

function clock(iso) {
  return new Date(iso).toLocaleTimeString('en-GB', { hour12: false });
}

function el(tag, className, text) {
  const e = document.createElement(tag);
  if (className) e.className = className;
  if (text !== undefined) e.textContent = text;
  return e;
}

function entryEl(m) {
  const t = tone(m.state);
  const li = el('li', 'msg ' + m.dir);
  li.append(el('div', 'bubble' + (t === 'bad' || t === 'warn' ? ' lost' : ''), m.text));
  const meta = el('div', 'meta');
  meta.append(el('span', 'peer', (m.dir === 'in' ? 'from ' : 'to ') + m.peer));
  const time = el('time', '', clock(m.time));
  time.dateTime = m.time;
  meta.append(time);
  if (m.total > 1) meta.append(el('span', 'parts', m.parts + '/' + m.total + ' parts'));
  meta.append(el('span', 'badge ' + t, m.state));
  if (m.no_receipt) meta.append(el('span', 'note', m.no_receipt));
  li.append(meta);
  return li;
}

function cardFor(p) {
  const sel = '[data-number="' + CSS.escape(p.number) + '"]';
  let card = phonesEl.querySelector(sel);
  if (card) return card;
  card = cardTmpl.content.firstElementChild.cloneNode(true);
  card.dataset.number = p.number;
  card.querySelector('.number').textContent = p.number;
  const f = card.querySelector('form');
  f.elements.from.value = p.number;
  f.elements.to.value = p.peer;
  f.elements.text.placeholder = 'Text as ' + p.number;
  return card;
}

function renderPhones(phones) {
  const cards = phones.map(p => {
    const card = cardFor(p);
    card.querySelector('.count').textContent = p.count + (p.count === 1 ? ' message' : ' messages');
    const key = JSON.stringify(p.messages);
    if (shown.get(p.number) !== key) {
      const thread = card.querySelector('.thread');
      const atEnd = !shown.has(p.number) ||
        thread.scrollHeight - thread.scrollTop - thread.clientHeight < 40;
      thread.replaceChildren(...p.messages.map(entryEl));
      shown.set(p.number, key);
      if (atEnd) thread.scrollTop = thread.scrollHeight;
    }
    return card;
  });
  const inOrder = cards.length === phonesEl.children.length &&
    cards.every((c, i) => phonesEl.children[i] === c);
  if (!inOrder) phonesEl.replaceChildren(...cards);
  document.getElementById('empty').hidden = phones.length > 0;
}

function renderConfig(c) {
  document.getElementById('summary').textContent = c.summary;
  if (configBusy) return;
  for (const name of ['outcome', 'receipt_delay']) {
    const want = c[name];
    let input = carrier.querySelector('input[name="' + name + '"][value="' + CSS.escape(want) + '"]');
    if (!input) {
      const group = carrier.querySelector('input[name="' + name + '"]').closest('.seg');
      const label = el('label');
      input = el('input');
      input.type = 'radio';
      input.name = name;
      input.value = want;
      label.append(input, el('span', '', 'After ' + want));
      group.append(label);
    }
    input.checked = true;
  }
}

function renderBound(n, reachable) {
  const b = document.getElementById('bound');
  b.className = 'bind ' + (reachable && n > 0 ? 'up' : 'down');
  b.textContent = !reachable ? 'Simulator not reachable'
    : n > 0 ? 'Gateway bound · ' + n + (n === 1 ? ' session' : ' sessions')
    : 'No gateway bound: phones cannot send';
}

async function refresh() {
  try {
    const r = await fetch('/phones', { cache: 'no-store' });
    if (!r.ok) throw new Error(r.statusText);
    const v = await r.json();
    renderBound(v.bound, true);
    renderConfig(v.config);
    renderPhones(v.phones);
  } catch (err) {
    renderBound(0, false);
  }
}

async function poll() {
  await refresh();
  setTimeout(poll, POLL_MS);
}

function flash(out, text, kind) {
  out.textContent = text;
  out.className = 'status ' + kind;
  if (kind === 'ok') {
    setTimeout(() => { if (out.textContent === text) out.textContent = ''; }, 2500);
  }
}

document.addEventListener('submit', async ev => {
  const f = ev.target;
  if (!f.matches('form.compose')) return;
  ev.preventDefault();
  const body = new URLSearchParams(new FormData(f));
  body.delete('page');
  const out = f.querySelector('.status');
  const button = f.querySelector('button');
  button.disabled = true;
  flash(out, 'Sending…', 'busy');
  try {
    const r = await fetch('/mo', { method: 'POST', body });
    if (!r.ok) throw new Error((await r.text()).trim() || r.statusText);
    f.elements.text.value = '';
    flash(out, 'Sent', 'ok');
  } catch (err) {
    flash(out, 'Not sent: ' + err.message, 'err');
  } finally {
    button.disabled = false;
    refresh();
  }
});

document.addEventListener('keydown', ev => {
  const t = ev.target;
  if (ev.key === 'Enter' && !ev.shiftKey && t.matches('form.compose textarea')) {
    ev.preventDefault();
    t.form.requestSubmit();
  }
});

carrier.addEventListener('change', async () => {
  const body = {};
  for (const name of ['outcome', 'receipt_delay']) {
    const checked = carrier.querySelector('input[name="' + name + '"]:checked');
    if (checked) body[name] = checked.value;
  }
  configBusy = true;
  const summary = document.getElementById('summary');
  try {
    const r = await fetch('/config', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(body),
    });
    if (!r.ok) throw new Error((await r.text()).trim() || r.statusText);
    configBusy = false;
    renderConfig(await r.json());
  } catch (err) {
    configBusy = false;
    summary.textContent = 'Not changed: ' + err.message;
  }
});

for (const t of document.querySelectorAll('.thread')) t.scrollTop = t.scrollHeight;
poll();
