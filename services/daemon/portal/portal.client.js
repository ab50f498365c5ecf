// The portal: first-boot setup, unlock, sign-in and the home page, all over /api/v1.
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
    throw new Error((error.message || `request failed (${res.status})`) + details);
  }
  return data;
}

function show(view) {
  for (const section of document.querySelectorAll('[data-view]')) section.hidden = section.dataset.view !== view;
  $('#error').hidden = true;
  const first = document.querySelector(`[data-view="${view}"] input, [data-view="${view}"] textarea`);
  if (first) first.focus();
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
  return refresh();
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

api('GET', '/api/v1/version').then((v) => ($('#version').textContent = v.version)).catch(() => {});
refresh().catch(fail);
