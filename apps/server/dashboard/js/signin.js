// The pages at `/`: sign-in, and first-run setup while no admin exists. Both forms are in the
// server's HTML; this script sends them as JSON and shows the API's message on failure.

import { post, ApiError } from './api.js';

const HOME = '/settings/integrations/api-keys';

function showError(form, message) {
  const box = form.querySelector('#form-error');
  box.textContent = message;
  box.hidden = false;
}

function values(form) {
  const data = {};
  for (const input of form.querySelectorAll('input')) data[input.name] = input.value;
  return data;
}

async function submit(form, send) {
  const button = form.querySelector('button[type="submit"]');
  if (button.disabled) return;
  const missing = Array.from(form.querySelectorAll('input[required]')).find((input) => input.value.trim() === '');
  if (missing) {
    const label = form.querySelector(`label[for="${missing.id}"]`);
    missing.setAttribute('aria-invalid', 'true');
    missing.focus();
    showError(form, `${label ? label.textContent : 'This field'} is required.`);
    return;
  }
  form.querySelectorAll('[aria-invalid]').forEach((input) => input.removeAttribute('aria-invalid'));
  form.querySelector('#form-error').hidden = true;
  button.disabled = true;
  try {
    await send(values(form));
    window.location.assign(HOME);
  } catch (err) {
    showError(form, err instanceof ApiError ? err.message : 'Something went wrong. Please try again.');
    button.disabled = false;
  }
}

async function signIn({ email, password }) {
  await post('/sessions', { email, password, cookie: true });
}

const signInForm = document.getElementById('sign-in');
if (signInForm) {
  signInForm.addEventListener('submit', (event) => {
    event.preventDefault();
    submit(signInForm, signIn);
  });
}

const setupForm = document.getElementById('setup');
if (setupForm) {
  setupForm.addEventListener('submit', (event) => {
    event.preventDefault();
    submit(setupForm, async (data) => {
      await post('/setup', data);
      await signIn(data);
    });
  });
}
