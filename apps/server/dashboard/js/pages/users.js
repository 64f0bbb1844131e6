// Settings > Users (P1, P8; admins): the organization's users and adding one. Changing a role
// and deactivating appear once the server has `PATCH /v1/users/{id}`: the page asks the
// server's own OpenAPI document, so the controls arrive with the route, without a new script.

import { get, post, patch, del, idempotencyKey, ApiError } from '../api.js';
import { h, replace, field } from '../dom.js';
import { badge, table, confirmDialog, errorBox, toast, openModal } from '../ui.js';
import { formatDate, ROLES } from '../format.js';

async function userRoutes() {
  try {
    const response = await fetch('/v1/openapi.json', { credentials: 'same-origin' });
    const doc = await response.json();
    const item = doc.paths['/v1/users/{id}'] || {};
    return { patch: Boolean(item.patch), delete: Boolean(item.delete), reset: Boolean(doc.paths['/v1/users/{id}/password-reset']) };
  } catch {
    return { patch: false, delete: false, reset: false };
  }
}

export async function render(page, ctx) {
  if (!ctx.can('users.manage')) {
    replace(page, h('h1', {}, 'Users'), h('p', {}, 'Only admins can manage users. Ask an admin of your organization to add or change users.'));
    return;
  }
  const [users, routes] = await Promise.all([get('/users'), userRoutes()]);
  const rerender = async () => {
    if (!page.isConnected) return;
    const fresh = h('div', { class: 'page' });
    await render(fresh, ctx);
    page.replaceWith(fresh);
  };
  const columns = [
    { label: 'Email', cell: (u) => h('span', { class: 'user-email-cell' }, u.email, u.id === ctx.me.user.id ? ' (you)' : '') },
    { label: 'Role', cell: (u) => (routes.patch && u.id !== ctx.me.user.id ? roleSelect(u, rerender) : badge(ROLES[u.role] || u.role, u.role === 'admin' ? 'admin' : 'info')) },
    { label: 'Status', cell: (u) => badge(u.status === 'deactivated' ? 'Deactivated' : 'Active', u.status === 'deactivated' ? 'neutral' : 'success') },
    { label: 'Added', cell: (u) => formatDate(u.created_at) },
  ];
  if (routes.patch) {
    columns.push({
      label: 'Actions', srOnly: true,
      cell: (u) => (u.id === ctx.me.user.id ? null : h('div', { class: 'actions' },
        statusButton(u, rerender),
        routes.reset && resetButton(u),
        routes.delete && deleteButton(u, rerender))),
    });
  }
  replace(page,
    h('div', { class: 'page-header' }, h('div', {}, h('p', { class: 'breadcrumb' }, 'Settings'), h('h1', {}, 'Users'),
      h('p', {}, 'Admins manage everything; managers view and change settings; viewers only look.'))),
    h('div', { class: 'panel' }, table({ caption: 'Users', columns, rows: users.data })),
    addUserForm(rerender));
}

function roleSelect(user, rerender) {
  const select = h('select', { 'aria-label': `Role of ${user.email}` },
    Object.entries(ROLES).map(([value, label]) => h('option', { value, selected: value === user.role }, label)));
  select.addEventListener('change', async () => {
    try {
      await patch(`/users/${user.id}`, { role: select.value });
      toast(`${user.email} is now ${ROLES[select.value]}.`);
    } catch (err) {
      toast(err.message, 'error');
      await rerender();
    }
  });
  return select;
}

function statusButton(user, rerender) {
  const deactivating = user.status !== 'deactivated';
  return h('button', {
    type: 'button', class: ['button', 'small', deactivating && 'danger'], 'aria-label': `${deactivating ? 'Deactivate' : 'Reactivate'} ${user.email}`,
    on: {
      click: async () => {
        if (deactivating) {
          const sure = await confirmDialog({ title: `Deactivate ${user.email}?`, message: 'They are signed out at once and can no longer sign in. Their API keys keep working until revoked.', confirmLabel: 'Deactivate', danger: true });
          if (!sure) return;
        }
        try {
          await patch(`/users/${user.id}`, { status: deactivating ? 'deactivated' : 'active' });
          await rerender();
        } catch (err) {
          toast(err.message, 'error');
        }
      },
    },
  }, deactivating ? 'Deactivate' : 'Reactivate');
}

function addUserForm(onDone) {
  const email = h('input', { type: 'email', required: true, autocomplete: 'off' });
  const password = h('input', { type: 'password', required: true, minlength: '10', maxlength: '128', autocomplete: 'new-password' });
  const role = h('select', {}, Object.entries(ROLES).map(([value, label]) => h('option', { value, selected: value === 'viewer' }, label)));
  const error = h('div');
  const submit = h('button', { type: 'submit', class: 'button primary', id: 'add-user' }, 'Add user');
  const form = h('form', { class: 'form', novalidate: true },
    h('h2', {}, 'Add a user'),
    h('div', { class: 'grid-2' }, field('Email', email), field('Role', role)),
    field('Temporary password', password, '10 to 128 characters. Share it with them privately.'),
    error, h('div', { class: 'actions' }, submit));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    if (submit.disabled) return;
    replace(error);
    submit.disabled = true;
    try {
      await post('/users', { email: email.value, password: password.value, role: role.value }, { idempotency: idempotencyKey() });
      toast(`${email.value} was added.`);
      await onDone();
    } catch (err) {
      submit.disabled = false;
      error.append(errorBox(err instanceof ApiError ? err.message : 'The user could not be added.'));
    }
  });
  return h('section', { class: 'panel' }, form);
}

function resetButton(user) {
  return h('button', {
    type: 'button', class: 'button small', 'aria-label': `Issue a password reset for ${user.email}`,
    on: {
      click: async () => {
        try {
          const issued = await post(`/users/${user.id}/password-reset`, {}, { idempotency: idempotencyKey() });
          showResetToken(user, issued);
        } catch (err) {
          toast(err.message, 'error');
        }
      },
    },
  }, 'Reset password');
}

/** The token, shown once: it is never stored in the page or shown again. */
function showResetToken(user, issued) {
  const modal = openModal({ title: `Password reset for ${user.email}` });
  const mailed = {
    sent: 'It was also emailed to them.',
    not_configured: 'No email was sent (connect Postmark with a default sender to email it): give it to them privately.',
    failed: 'Emailing it failed: give it to them privately.',
  }[issued.email] || '';
  const token = h('code', { class: 'secret', id: 'reset-token' }, issued.reset_token);
  modal.body.append(
    h('p', {}, `This token lets ${user.email} set a new password once, until ${new Date(issued.expires_at).toLocaleString()}. It is shown only once.`),
    h('p', {}, token),
    h('p', {}, mailed));
  const done = h('button', { type: 'button', class: 'button primary', on: { click: () => modal.close() } }, 'Done');
  modal.foot.append(done);
}

function deleteButton(user, rerender) {
  return h('button', {
    type: 'button', class: ['button', 'small', 'danger'], 'aria-label': `Delete ${user.email}`,
    on: {
      click: async () => {
        const sure = await confirmDialog({
          title: `Delete ${user.email}?`,
          message: 'They are signed out at once and can no longer sign in. The API keys they created keep working until revoked, and still show them as creator.',
          confirmLabel: 'Delete user',
          danger: true,
        });
        if (!sure) return;
        try {
          await del(`/users/${user.id}`);
          toast(`${user.email} was deleted.`);
          await rerender();
        } catch (err) {
          toast(err.message, 'error');
        }
      },
    },
  }, 'Delete');
}
