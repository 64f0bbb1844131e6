// My account (P8; every signed-in user): change your password, see and end your sessions.
// Session tokens are never shown: the API lists sessions by id only.

import { get, post, del, ApiError } from '../api.js';
import { h, replace, field } from '../dom.js';
import { table, confirmDialog, errorBox, toast, badge } from '../ui.js';
import { formatDate } from '../format.js';

export async function render(page, ctx) {
  const sessions = await get('/me/sessions');
  const rerender = async () => {
    if (!page.isConnected) return;
    const fresh = h('div', { class: 'page' });
    await render(fresh, ctx);
    page.replaceWith(fresh);
  };
  const columns = [
    { label: 'Signed in', cell: (s) => h('span', {}, formatDate(s.created_at), s.current ? ' ' : '', s.current ? badge('This session', 'success') : null) },
    { label: 'Browser', cell: (s) => s.user_agent || 'Unknown' },
    { label: 'Address', cell: (s) => s.ip || 'Unknown' },
    { label: 'Expires', cell: (s) => formatDate(s.expires_at) },
    { label: 'Actions', srOnly: true, cell: (s) => (s.current ? null : endButton(s, rerender)) },
  ];
  const others = sessions.data.filter((s) => !s.current).length;
  const endOthers = h('button', {
    type: 'button', class: 'button danger', id: 'end-other-sessions', disabled: others === 0,
    on: {
      click: async () => {
        const sure = await confirmDialog({ title: 'Sign out everywhere else?', message: `This ends your ${others} other session(s). This one stays.`, confirmLabel: 'End other sessions', danger: true });
        if (!sure) return;
        try {
          const ended = await del('/me/sessions');
          toast(`${ended.ended} session(s) ended.`);
          await rerender();
        } catch (err) {
          toast(err.message, 'error');
        }
      },
    },
  }, 'End all other sessions');
  replace(page,
    h('div', { class: 'page-header' }, h('div', {}, h('p', { class: 'breadcrumb' }, 'Settings'), h('h1', {}, 'My account'),
      h('p', {}, `Signed in as ${ctx.me.user.email}.`))),
    passwordForm(rerender),
    h('section', { class: 'panel' }, h('h2', {}, 'My sessions'),
      table({ caption: 'My sessions', columns, rows: sessions.data }),
      h('div', { class: 'actions' }, endOthers)));
}

function endButton(session, rerender) {
  return h('button', {
    type: 'button', class: ['button', 'small', 'danger'], 'aria-label': `End the session signed in ${formatDate(session.created_at)}`,
    on: {
      click: async () => {
        try {
          await del(`/me/sessions/${session.id}`);
          toast('The session was ended.');
          await rerender();
        } catch (err) {
          toast(err.message, 'error');
        }
      },
    },
  }, 'End session');
}

function passwordForm(onDone) {
  const current = h('input', { type: 'password', required: true, autocomplete: 'current-password' });
  const next = h('input', { type: 'password', required: true, minlength: '10', maxlength: '128', autocomplete: 'new-password' });
  const error = h('div');
  const submit = h('button', { type: 'submit', class: 'button primary', id: 'change-password' }, 'Change password');
  const form = h('form', { class: 'form', novalidate: true },
    h('h2', {}, 'Change password'),
    field('Current password', current),
    field('New password', next, '10 to 128 characters. Your other sessions end; this one stays.'),
    error, h('div', { class: 'actions' }, submit));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    if (submit.disabled) return;
    replace(error);
    submit.disabled = true;
    try {
      await post('/me/password', { current_password: current.value, new_password: next.value });
      toast('Your password was changed. Your other sessions were ended.');
      await onDone();
    } catch (err) {
      submit.disabled = false;
      error.append(errorBox(err instanceof ApiError ? err.message : 'The password could not be changed.'));
    }
  });
  return h('section', { class: 'panel' }, form);
}
