// The portal: first-boot setup, unlock, sign-in and the home page with the apps, all over /api/v1.
// Plain browser JavaScript, served as is: no build step and no inline script (strict CSP).
'use strict';

const $ = (selector) => document.querySelector(selector);
let csrfToken = '';
let setup = { token: '', recoveryKey: '' };
let passwordRules = null;

async function api(method, path, body) {
  const headers = { 'x-csrf-token': csrfToken };
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const data = res.status === 204 ? {} : await res.json();
  if (!res.ok) {
    const error = data.error || {};
    const details = Array.isArray(error.details) ? '\n' + error.details.join('\n') : '';
    throw Object.assign(new Error((error.message || `request failed (${res.status})`) + details), { status: res.status });
  }
  return data;
}

function show(view) {
  for (const section of document.querySelectorAll('[data-view]')) section.hidden = section.dataset.view !== view;
  $('#error').hidden = true;
  const first = document.querySelector(`[data-view="${view}"] input, [data-view="${view}"] textarea`);
  if (first && view !== 'home') first.focus();
  if (view === 'home') enterHome();
  else leaveHome();
}

function fail(err) {
  $('#error').textContent = err.message;
  $('#error').hidden = false;
}

/** Wraps a form: its fields as an object go to handler; errors are shown, the button re-enabled. */
function onSubmit(id, handler) {
  const form = $(id);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const button = form.querySelector('button');
    button.disabled = true;
    try {
      await handler(Object.fromEntries(new FormData(form)));
    } catch (err) {
      fail(err);
    } finally {
      button.disabled = false;
    }
  });
}

function signedIn(data) {
  csrfToken = data.csrfToken;
  if (returnToApp()) return undefined;
  return refresh();
}

/**
 * The proxy's auth gate sends browsers here with ?next=<the app's URL>. Back there after sign-in,
 * but only to this device (its own host name or an app's name below it), never elsewhere.
 */
function returnToApp() {
  const next = new URLSearchParams(location.search).get('next');
  if (!next) return false;
  let target;
  try {
    target = new URL(next, location.href);
  } catch {
    return false;
  }
  const own = location.hostname;
  const onDevice = target.hostname === own || target.hostname.endsWith(`.${own}`);
  if (!onDevice || !['http:', 'https:'].includes(target.protocol)) return false;
  location.assign(target.href);
  return true;
}

async function refresh() {
  const status = await api('GET', '/api/v1/setup/status');
  passwordRules = status.passwordRules;
  $('#device-state').textContent = { unclaimed: 'Not set up', locked: 'Locked', unlocked: 'Unlocked', failed: 'Storage fault' }[status.state];
  if (status.state === 'unclaimed') return show(setup.token ? 'password' : 'claim');
  if (status.state === 'locked') return show('unlock');
  if (status.state === 'failed') {
    $('#failed-reason').textContent = status.reason || '';
    return show('failed');
  }
  const session = await api('GET', '/api/v1/auth/session');
  csrfToken = session.csrfToken || '';
  show(session.authenticated ? 'home' : 'login');
}

function renderPasswordRules() {
  const form = $('#password-form');
  const password = form.password.value;
  const rules = passwordRules;
  const classes = [/[a-z]/, /[A-Z]/, /[0-9]/, /[^a-zA-Z0-9]/].filter((re) => re.test(password)).length;
  const checks = [
    [`At least ${rules.minLength} characters`, password.length >= rules.minLength],
    [`${rules.minCharacterClasses} of lower case, upper case, digits, symbols — or ${rules.passphraseLength}+ characters`, classes >= rules.minCharacterClasses || password.length >= rules.passphraseLength],
    ['Both entries match', password.length > 0 && password === form.repeat.value],
  ];
  $('#password-rules').replaceChildren(...checks.map(([text, ok]) => Object.assign(document.createElement('li'), { textContent: text, className: ok ? 'ok' : '' })));
}

onSubmit('#claim-form', async ({ claimCode }) => {
  const claim = await api('POST', '/api/v1/setup/claim', { claimCode });
  setup = { token: claim.setupToken, recoveryKey: claim.recoveryKey };
  $('#recovery-words').replaceChildren(...claim.recoveryKey.split(' ').map((word) => Object.assign(document.createElement('li'), { textContent: word })));
  show('recovery');
});

$('#recovery-saved').addEventListener('change', (event) => ($('#recovery-next').disabled = !event.target.checked));
$('#recovery-next').addEventListener('click', () => {
  show('password');
  renderPasswordRules();
});
$('#download-recovery').addEventListener('click', () => {
  const link = document.createElement('a');
  link.href = URL.createObjectURL(new Blob([`Piccolo OS recovery key\n\n${setup.recoveryKey}\n`], { type: 'text/plain' }));
  link.download = 'piccolo-recovery-key.txt';
  link.click();
});

$('#password-form').addEventListener('input', renderPasswordRules);
onSubmit('#password-form', async ({ password, repeat }) => {
  if (password !== repeat) throw new Error('The two passwords differ.');
  const data = await api('POST', '/api/v1/setup', { setupToken: setup.token, password, recoveryKeySaved: $('#recovery-saved').checked });
  setup = { token: '', recoveryKey: '' };
  await signedIn(data);
});

onSubmit('#unlock-form', async ({ password }) => signedIn(await api('POST', '/api/v1/crypto/unlock', { password })));
onSubmit('#reset-form', async ({ recoveryKey, newPassword }) =>
  signedIn(await api('POST', '/api/v1/crypto/reset-password', { recoveryKey: recoveryKey.trim().split(/\s+/).join(' '), newPassword })),
);
onSubmit('#login-form', async ({ password }) => signedIn(await api('POST', '/api/v1/auth/login', { password })));

$('#lock').addEventListener('click', async () => {
  if (!confirm('Lock the device? Apps lose their data until someone unlocks it with the admin password.')) return;
  await api('POST', '/api/v1/crypto/lock', { confirm: true }).then(refresh, fail);
});
$('#logout').addEventListener('click', () => api('POST', '/api/v1/auth/logout').then(refresh, fail));

// ---- home: the apps ----

const BUSY_STATES = ['installing', 'starting', 'stopping', 'updating', 'removing'];
const JOB_VERBS = { install: 'Installing', start: 'Starting', stop: 'Stopping', restart: 'Restarting', update: 'Updating', revert: 'Reverting', uninstall: 'Uninstalling' };
const JOB_NAMES = { install: 'Install', start: 'Start', stop: 'Stop', restart: 'Restart', update: 'Update', revert: 'Revert', uninstall: 'Uninstall' };
const HEALTH = { ok: 'healthy', degraded: 'unhealthy', unknown: 'health not checked yet' };
let homeActive = false;
let apps = new Map(); // name → the app as GET /api/v1/apps gave it, patched by events
const cards = new Map(); // name → its <li>
const jobs = new Map(); // app name → its latest job
const catalogButtons = new Map(); // template name → its Install button
let loads = 0; // so that only the newest list is shown
let retryTimer = 0;
let events = null;
let eventsTimer = 0;
let eventsDelay = 1000;

function enterHome() {
  if (homeActive) return;
  homeActive = true;
  connectEvents();
  loadApps();
  if (!catalogButtons.size) loadCatalog();
}

function leaveHome() {
  homeActive = false;
  clearTimeout(retryTimer);
  clearTimeout(eventsTimer);
  const socket = events;
  events = null;
  socket?.close();
}

/** Sets an element's text and hides it when there is none. */
function say(element, text) {
  element.textContent = text || '';
  element.hidden = !text;
}

async function loadApps() {
  const load = ++loads;
  clearTimeout(retryTimer);
  try {
    const list = (await api('GET', '/api/v1/apps')).apps;
    if (load !== loads || !homeActive) return;
    apps = new Map(list.map((app) => [app.name, app]));
    say($('#apps-status'), list.length ? '' : 'No apps installed yet. Install one from the catalog below.');
    renderApps();
  } catch (err) {
    if (load !== loads || !homeActive) return;
    if (err.status === 401 || err.status === 423) return refresh().catch(fail);
    say($('#apps-status'), `Apps are not available right now: ${err.message}. Trying again…`);
    retryTimer = setTimeout(loadApps, 3000);
  }
}

function renderApps() {
  for (const [name, card] of cards) {
    if (!apps.has(name)) {
      card.remove();
      cards.delete(name);
    }
  }
  for (const app of apps.values()) {
    if (!cards.has(app.name)) cards.set(app.name, newCard(app.name));
    updateCard(app);
  }
  // Re-ordered only when needed: moving a card would take the focus from its confirmation field.
  const list = $('#apps');
  const order = [...apps.keys()].sort();
  if ([...list.children].map((card) => card.dataset.app).join('/') !== order.join('/')) list.replaceChildren(...order.map((name) => cards.get(name)));
  for (const [name, button] of catalogButtons) {
    button.disabled = apps.has(name);
    button.textContent = apps.has(name) ? 'Installed' : 'Install';
  }
}

function newCard(name) {
  const card = $('#app-card').content.firstElementChild.cloneNode(true);
  const error = card.querySelector(':scope > .error');
  const form = card.querySelector('form.uninstall');
  const confirmButton = form.querySelector('button.danger');
  card.dataset.app = name;
  card.querySelector('.app-name').textContent = name;
  for (const action of ['start', 'stop', 'restart']) {
    const button = card.querySelector(`[data-action="${action}"]`);
    button.addEventListener('click', () => act(error, button, () => api('POST', `/api/v1/apps/${encodeURIComponent(name)}/${action}`)));
  }
  const toggle = card.querySelector('[data-action="uninstall"]');
  const openForm = (open) => {
    form.hidden = !open;
    toggle.setAttribute('aria-expanded', String(open));
    if (open) form.elements.confirm.focus();
    else form.reset();
  };
  toggle.addEventListener('click', () => openForm(form.hidden));
  form.querySelector('[data-action="cancel"]').addEventListener('click', () => openForm(false));
  form.querySelector('.confirm-label').textContent = `To confirm, type the app's name (${name}):`;
  confirmButton.textContent = `Uninstall ${name}`;
  form.addEventListener('input', () => (confirmButton.disabled = form.elements.confirm.value !== name));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const body = { confirm: form.elements.confirm.value, purge: form.elements.purge.checked };
    act(error, confirmButton, async () => {
      const answer = await api('DELETE', `/api/v1/apps/${encodeURIComponent(name)}`, body);
      openForm(false);
      return answer;
    });
  });
  return card;
}

function updateCard(app) {
  const card = cards.get(app.name);
  if (!card) return;
  const part = (name) => card.querySelector(`.app-${name}`);
  const job = jobs.get(app.name);
  const busy = BUSY_STATES.includes(app.state) || job?.status === 'running';
  part('state').textContent = app.state;
  part('state').dataset.state = app.state;
  say(part('health'), app.health === 'unknown' && !app.spec.healthcheck ? '' : HEALTH[app.health]);
  part('health').dataset.health = app.health;
  say(part('reason'), app.state === 'failed' ? `Failed: ${app.reason || 'unknown reason'}` : app.health === 'degraded' ? `Health check: ${app.healthReason}` : '');
  part('links').replaceChildren(...app.services.map(serviceLink));
  part('links').hidden = !app.services.length;
  // A failed job whose error is already the app's failure reason is not said twice.
  renderJob(part('job'), job?.status === 'failed' && app.state === 'failed' && job.error === app.reason ? undefined : job);
  card.querySelector('[data-action="start"]').disabled = busy || app.state === 'running';
  card.querySelector('[data-action="stop"]').disabled = busy || app.run === 'stopped';
  card.querySelector('[data-action="restart"]').disabled = busy || app.run === 'stopped';
  card.querySelector('[data-action="uninstall"]').disabled = busy;
}

/** Where a service is reached: its public port on this device, under the host the portal is on. */
function serviceLink(service) {
  const item = document.createElement('span');
  const host = `${location.hostname}:${service.publicPort}`;
  if (service.protocol === 'http') {
    const link = Object.assign(document.createElement('a'), { href: `${service.flow === 'tls' ? 'https' : 'http'}://${host}/`, target: '_blank', rel: 'noopener' });
    link.textContent = link.href;
    item.append(`${service.listener}: `, link);
  } else {
    item.append(`${service.listener}: ${service.protocol === 'websocket' ? `ws://${host}/` : `${host} (TCP)`}`);
  }
  return item;
}

function renderJob(line, job) {
  const [text, bar] = line.children;
  if (!job || job.status === 'succeeded') return (line.hidden = true);
  line.hidden = false;
  line.classList.toggle('failed', job.status === 'failed');
  const { done, total, step } = job.progress;
  if (job.status === 'failed') text.textContent = `${JOB_NAMES[job.kind]} failed: ${job.error}`;
  else text.textContent = `${JOB_VERBS[job.kind]}…${total ? ` step ${Math.min(done + 1, total)} of ${total}` : ''}${step ? ` (${step.replace(/-/g, ' ')})` : ''}`;
  bar.hidden = job.status !== 'running' || !total;
  Object.assign(bar, { max: total || 1, value: done });
}

/** A job's news, from the events stream or from polling. A finished job reloads the list. */
function onJob(job) {
  const known = jobs.get(job.app);
  if (known?.id === job.id && (known.status !== 'running' || known.updatedAt > job.updatedAt)) return;
  jobs.set(job.app, job);
  if (job.status !== 'running') loadApps();
  else if (apps.has(job.app)) updateCard(apps.get(job.app));
}

/** Follows a job we started; polls in case the events stream misses its end. */
function track(job) {
  onJob(job);
  const poll = async () => {
    const known = jobs.get(job.app);
    if (!homeActive || known?.id !== job.id || known.status !== 'running') return;
    await api('GET', `/api/v1/jobs/${job.id}`).then(onJob, () => {});
    setTimeout(poll, 2000);
  };
  setTimeout(poll, 2000);
}

/** Runs a request from a button: errors go to the element next to it; a job is followed. */
async function act(error, button, request) {
  error.hidden = true;
  button.disabled = true;
  try {
    const answer = await request();
    if (answer.job) track(answer.job);
    await loadApps();
    return true;
  } catch (err) {
    say(error, err.message);
    return false;
  } finally {
    button.disabled = false;
    renderApps();
  }
}

async function loadCatalog() {
  try {
    const templates = (await api('GET', '/api/v1/catalog')).apps;
    $('#catalog').replaceChildren(...templates.map(catalogItem));
    say($('#catalog-status'), templates.length ? '' : 'The catalog is empty.');
    renderApps();
  } catch (err) {
    say($('#catalog-status'), `The catalog could not be loaded: ${err.message}`);
  }
}

function catalogItem(template) {
  const item = document.createElement('li');
  const text = document.createElement('div');
  const name = Object.assign(document.createElement('strong'), { textContent: template.name });
  text.append(name, Object.assign(document.createElement('span'), { className: 'muted', textContent: ` ${template.description}` }));
  const button = Object.assign(document.createElement('button'), { type: 'button', className: 'secondary', textContent: 'Install' });
  button.setAttribute('aria-label', `Install ${template.name}`);
  const error = Object.assign(document.createElement('p'), { className: 'error', hidden: true });
  error.setAttribute('role', 'alert');
  button.addEventListener('click', () => act(error, button, () => api('POST', '/api/v1/apps', { catalog: template.name })));
  catalogButtons.set(template.name, button);
  item.append(text, button, error);
  return item;
}

$('#install-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const form = event.target;
  if (await act(form.querySelector('.error'), form.querySelector('button'), () => api('POST', '/api/v1/apps', { spec: form.elements.spec.value }))) form.reset();
});

function connectEvents() {
  const socket = new WebSocket(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/api/v1/events`);
  events = socket;
  socket.addEventListener('open', () => {
    eventsDelay = 1000;
    $('#events-status').hidden = true;
    loadApps(); // what happened while we were away
  });
  socket.addEventListener('message', (message) => onEvent(JSON.parse(message.data)));
  socket.addEventListener('close', () => {
    if (events !== socket) return; // closed on purpose
    $('#events-status').hidden = false;
    eventsTimer = setTimeout(connectEvents, eventsDelay);
    eventsDelay = Math.min(eventsDelay * 2, 30_000);
    // Refused because the session ended (signed out elsewhere, locked)? Then show the sign-in.
    api('GET', '/api/v1/auth/session').then((session) => session.authenticated || refresh(), () => {});
  });
}

function onEvent({ type, data }) {
  if (type === 'vault.state') return data.state === 'unlocked' || refresh().catch(fail);
  if (type === 'job.progress') return onJob(data.job);
  const app = apps.get(data.app);
  if (data.type === 'app-removed') {
    apps.delete(data.app);
    say($('#apps-status'), apps.size ? '' : 'No apps installed yet. Install one from the catalog below.');
    return renderApps();
  }
  if (!app) return loadApps(); // new: the list has its links and all
  if (type === 'app.state') Object.assign(app, { state: data.state, reason: data.reason });
  if (type === 'app.health') Object.assign(app, { health: data.health, healthReason: data.reason });
  updateCard(app);
}

api('GET', '/api/v1/version').then((v) => ($('#version').textContent = v.version)).catch(() => {});
refresh().catch(fail);
