// The portal: first-boot setup, unlock, sign-in, the home page with the apps and the remote access
// screen, all over /api/v1.
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
    throw Object.assign(new Error((error.message || `request failed (${res.status})`) + details), { status: res.status, error });
  }
  return data;
}

function show(view) {
  for (const section of document.querySelectorAll('[data-view]')) section.hidden = section.dataset.view !== view;
  $('#error').hidden = true;
  const first = document.querySelector(`[data-view="${view}"] input, [data-view="${view}"] textarea`);
  if (first && view !== 'home' && view !== 'remote') first.focus();
  if (view === 'home') enterHome();
  else leaveHome();
  if (view === 'remote') enterRemote();
  else leaveRemote();
}

/** Signed in: the screen the address names (#remote), else home. */
function signedInView() {
  return location.hash === '#remote' ? 'remote' : 'home';
}

window.addEventListener('hashchange', () => {
  const current = document.querySelector('[data-view]:not([hidden])')?.dataset.view;
  if (current === 'home' || current === 'remote') show(signedInView());
});

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
  show(session.authenticated ? signedInView() : 'login');
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

// ---- remote access ----

const REMOTE_FIELDS = ['relayUrl', 'deviceSecret', 'portalHostname', 'appDomain'];
const TUNNEL_STATES = {
  unconfigured: 'Not set up',
  disabled: 'Off',
  silent: 'No word from the tunnel',
  connecting: 'Connecting…',
  connected: 'Connected',
  backoff: 'Waiting to reconnect',
};
const REMOTE_POLL_MS = 3000;
const remoteForm = $('#remote-form');
const certRows = new Map(); // certificate name → its <tr>
let remoteActive = false;
let remoteTimer = 0;
let remoteLoads = 0; // so that only the newest status is shown
let remoteFilled = false; // the form takes the saved settings once per visit, never over typing

function enterRemote() {
  if (remoteActive) return;
  remoteActive = true;
  remoteFilled = false;
  document.querySelector('[data-view="remote"] h2').focus();
  loadRemote();
}

function leaveRemote() {
  remoteActive = false;
  clearTimeout(remoteTimer);
}

/** Fetches the status and shows it; again every few seconds while the page is visible. */
async function loadRemote() {
  const load = ++remoteLoads;
  clearTimeout(remoteTimer);
  try {
    const status = await api('GET', '/api/v1/remote/status');
    if (load !== remoteLoads || !remoteActive) return;
    renderRemote(status);
  } catch (err) {
    if (load !== remoteLoads || !remoteActive) return;
    if (err.status === 401 || err.status === 423) return refresh().catch(fail);
    $('#remote-status').replaceChildren(...fact('Status', `Not available right now: ${err.message}. Trying again…`));
  }
  if (!document.hidden) remoteTimer = setTimeout(loadRemote, REMOTE_POLL_MS);
}

document.addEventListener('visibilitychange', () => {
  if (remoteActive && !document.hidden) loadRemote();
});

function renderRemote(status) {
  // The tunnel's last report; "silent" when it has sent none, or none lately while connected.
  const tunnel = status.enabled ? status.tunnel.status : undefined;
  const state = !status.configured ? 'unconfigured' : !status.enabled ? 'disabled' : status.tunnel.reporting ? tunnel.state : 'silent';
  const badge = Object.assign(document.createElement('span'), { className: 'badge', textContent: TUNNEL_STATES[state] });
  badge.dataset.tunnel = state;
  const facts = [...fact('State', badge)];
  if (status.configured) facts.push(...fact('Relay', tunnel?.relay || status.relayUrl));
  if (state === 'silent' && tunnel) facts.push(...fact('Last report', `${new Date(status.tunnel.receivedAt).toLocaleString()}: ${TUNNEL_STATES[tunnel.state]}`));
  else if (tunnel) {
    facts.push(...fact('Since', new Date(tunnel.since).toLocaleString()));
    if (tunnel.state === 'backoff' && tunnel.backoffMs !== undefined) facts.push(...fact('Next try', `${Math.ceil(tunnel.backoffMs / 1000)} s after that`));
    if (tunnel.lastError) facts.push(...fact('Last error', tunnel.lastError));
    facts.push(...fact('Streams', String(tunnel.streams)), ...fact('Traffic', `${bytes(tunnel.bytesIn)} in, ${bytes(tunnel.bytesOut)} out`));
  }
  if (status.hostnames.length) facts.push(...fact('Names', hostnameList(status.hostnames)));
  // Replaced only when something changed: the list is a live region, read out on each change.
  const list = $('#remote-status');
  const next = document.createElement('dl');
  next.append(...facts);
  if (next.innerHTML !== list.innerHTML) list.replaceChildren(...next.childNodes);
  list.removeAttribute('aria-busy');
  if (!remoteFilled) {
    remoteFilled = true;
    for (const name of ['relayUrl', 'portalHostname', 'appDomain']) remoteForm.elements[name].value = status[name] || '';
    remoteForm.elements.deviceSecret.placeholder = status.deviceSecretSet ? 'Saved; type it again to save changes' : '';
  }
  $('#remote-disable').disabled = !status.enabled;
  renderCertificates(status.certificates || []);
}

/** The remote names, one a line; the ones whose app does its own TLS say so. */
function hostnameList(hostnames) {
  const list = document.createElement('ul');
  list.className = 'names';
  for (const name of hostnames) {
    const item = Object.assign(document.createElement('li'), { textContent: name.hostname });
    if (name.tls === 'passthrough') item.append(Object.assign(document.createElement('span'), { className: 'muted', textContent: ' (the app does TLS)' }));
    if (name.mode === 'tunnel') item.append(Object.assign(document.createElement('span'), { className: 'muted', textContent: ' (served by another node)' }));
    list.append(item);
  }
  return list;
}

/** A <dt>/<dd> pair for the status list. */
function fact(term, value) {
  const dd = document.createElement('dd');
  dd.append(value);
  return [Object.assign(document.createElement('dt'), { textContent: term }), dd];
}

function bytes(count) {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let unit = 0;
  for (; count >= 1000 && unit < units.length - 1; unit++) count /= 1000;
  return `${unit ? count.toFixed(1) : count} ${units[unit]}`;
}

/**
 * The settings as typed. For the checks only the filled fields (the saved settings stand in for
 * the rest) and never the secret: the checks do not sign in to the relay.
 */
function remoteSettings({ forChecks = false } = {}) {
  const settings = {};
  for (const name of REMOTE_FIELDS) {
    const value = remoteForm.elements[name].value.trim();
    if (!forChecks || (value && name !== 'deviceSecret')) settings[name] = value;
  }
  return settings;
}

/** Runs a form request: a 400 naming a field shows next to that field, anything else below. */
async function remoteRequest(button, request) {
  clearFieldErrors();
  say($('#remote-form-error'), '');
  say($('#remote-form-status'), '');
  button.disabled = true;
  try {
    await request();
  } catch (err) {
    if (err.status === 401 || err.status === 423) return refresh().catch(fail);
    const fields = fieldErrors(err);
    for (const [name, message] of fields) {
      say($(`#remote-${name}-error`), message);
      remoteForm.elements[name].setAttribute('aria-invalid', 'true');
    }
    if (fields.length) remoteForm.elements[fields[0][0]].focus();
    else say($('#remote-form-error'), err.message);
  } finally {
    button.disabled = false;
  }
}

/** [field, message] pairs from a 400's details: "relayUrl: must start with wss://", "body: missing field appDomain". */
function fieldErrors(err) {
  const details = err.status === 400 && Array.isArray(err.error?.details) ? err.error.details : [];
  const pairs = details.map((line) => {
    const missing = /^body: missing field (\w+)$/.exec(line);
    if (missing) return [missing[1], 'Required.'];
    const problem = /^(\w+): (.*)$/.exec(line);
    return problem && [problem[1], problem[2]];
  });
  return pairs.filter((pair) => pair && REMOTE_FIELDS.includes(pair[0]));
}

function clearFieldErrors() {
  for (const name of REMOTE_FIELDS) {
    say($(`#remote-${name}-error`), '');
    remoteForm.elements[name].removeAttribute('aria-invalid');
  }
}

remoteForm.addEventListener('submit', (event) => {
  event.preventDefault();
  const button = remoteForm.querySelector('button:not([type])');
  remoteRequest(button, async () => {
    await api('POST', '/api/v1/remote/configure', remoteSettings());
    remoteForm.elements.deviceSecret.value = '';
    remoteFilled = false;
    say($('#remote-form-status'), 'Saved. The device connects to the relay now.');
    await loadRemote();
  });
});

$('#remote-check').addEventListener('click', (event) =>
  remoteRequest(event.currentTarget, async () => {
    const list = $('#remote-checks');
    list.hidden = true;
    const result = await api('POST', '/api/v1/remote/preflight', remoteSettings({ forChecks: true }));
    list.replaceChildren(...result.checks.map(checkItem));
    list.hidden = !result.checks.length;
    const failed = result.checks.filter((check) => !check.ok).length;
    say($('#remote-form-status'), failed ? `${failed} of ${result.checks.length} checks failed.` : 'All checks passed.');
  }),
);

function checkItem(check) {
  const item = document.createElement('li');
  item.className = check.ok ? 'ok' : 'failed';
  item.dataset.check = check.id;
  const verdict = Object.assign(document.createElement('strong'), { textContent: check.ok ? 'Passed:' : 'Failed:' });
  item.append(verdict, ` ${check.message}`);
  return item;
}

function renderCertificates(certificates) {
  const names = new Set(certificates.map((cert) => cert.name));
  for (const [name, row] of certRows) {
    if (!names.has(name)) {
      row.remove();
      certRows.delete(name);
    }
  }
  for (const cert of certificates) {
    if (!certRows.has(cert.name)) certRows.set(cert.name, certRow(cert.name));
    const cells = certRows.get(cert.name).cells;
    cells[1].textContent = cert.issuer || '—';
    cells[2].textContent = cert.notAfter ? expiry(cert.notAfter) : '—';
    cells[3].textContent = cert.state;
    cells[4].replaceChildren(cert.lastError || '');
    if (cert.nextAttemptAt) cells[4].append(Object.assign(document.createElement('span'), { className: 'next-try', textContent: `Next try ${new Date(cert.nextAttemptAt).toLocaleString()}` }));
  }
  const body = $('#remote-certs tbody');
  const order = [...names].sort();
  if ([...body.rows].map((row) => row.dataset.name).join('/') !== order.join('/')) body.replaceChildren(...order.map((name) => certRows.get(name)));
  $('#remote-certs').hidden = !certificates.length;
  say($('#remote-certs-status'), certificates.length ? '' : 'No certificates yet. The device requests them once remote access is on.');
}

function certRow(name) {
  const row = document.createElement('tr');
  row.dataset.name = name;
  // Each cell names its column, for the stacked layout on narrow screens (portal.css).
  const cells = ['Name', 'Issuer', 'Expires', 'State', 'Last error', ''].map((label) => {
    const cell = document.createElement('td');
    if (label) cell.dataset.label = label;
    return cell;
  });
  cells[0].textContent = name;
  const button = Object.assign(document.createElement('button'), { type: 'button', className: 'secondary', textContent: 'Renew' });
  button.setAttribute('aria-label', `Renew ${name}`);
  button.addEventListener('click', async () => {
    say($('#remote-certs-error'), '');
    button.disabled = true;
    try {
      await api('POST', '/api/v1/remote/certificates/renew', { name });
      await loadRemote();
    } catch (err) {
      say($('#remote-certs-error'), `Renewing ${name} failed: ${err.message}`);
    } finally {
      button.disabled = false;
    }
  });
  cells[5].append(button);
  row.append(...cells);
  return row;
}

function expiry(notAfter) {
  const days = Math.round((Date.parse(notAfter) - Date.now()) / 86_400_000);
  const when = days >= 0 ? `in ${days} day${days === 1 ? '' : 's'}` : 'expired';
  return `${notAfter.slice(0, 10)} (${when})`;
}

function openDisable(open) {
  $('#remote-disable-confirm').hidden = !open;
  $('#remote-disable').setAttribute('aria-expanded', String(open));
  (open ? $('#remote-disable-yes') : $('#remote-disable')).focus();
}

$('#remote-disable').addEventListener('click', () => openDisable($('#remote-disable-confirm').hidden));
$('#remote-disable-cancel').addEventListener('click', () => openDisable(false));
$('#remote-disable-yes').addEventListener('click', async (event) => {
  const button = event.currentTarget;
  say($('#remote-disable-error'), '');
  button.disabled = true;
  try {
    await api('POST', '/api/v1/remote/disable', { confirm: true });
    $('#remote-disable-confirm').hidden = true;
    $('#remote-disable').setAttribute('aria-expanded', 'false');
    document.querySelector('[data-view="remote"] h2').focus(); // the toggle is disabled now
    await loadRemote();
  } catch (err) {
    say($('#remote-disable-error'), err.message);
  } finally {
    button.disabled = false;
  }
});

api('GET', '/api/v1/version').then((v) => ($('#version').textContent = v.version)).catch(() => {});
refresh().catch(fail);
