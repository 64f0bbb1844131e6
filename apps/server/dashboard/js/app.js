// The settings shell: who is signed in, the navigation, the notification bell, and the
// client-side router (History API; the server answers every /settings/... path with this shell).

import { get, del } from './api.js';
import { h, replace } from './dom.js';
import { errorBox, toast } from './ui.js';
import * as keys from './pages/keys.js';
import * as keyDetail from './pages/key_detail.js';
import * as catalog from './pages/catalog.js';
import * as connections from './pages/connections.js';
import * as webhooks from './pages/webhooks.js';
import * as users from './pages/users.js';
import * as account from './pages/account.js';
import * as notifications from './pages/notifications.js';
import * as audit from './pages/audit.js';

const ROUTES = [
  [/^\/settings\/?$/, null, () => ({ redirect: '/settings/integrations/api-keys' })],
  [/^\/settings\/integrations\/?$/, null, () => ({ redirect: '/settings/integrations/api-keys' })],
  [/^\/settings\/integrations\/api-keys\/?$/, 'api-keys', keys.render],
  [/^\/settings\/integrations\/api-keys\/([^/]+)$/, 'api-keys', keyDetail.render],
  [/^\/settings\/integrations\/all\/?$/, 'all', catalog.render],
  [/^\/settings\/integrations\/connected\/?$/, 'connected', connections.renderList],
  [/^\/settings\/integrations\/connected\/([^/]+)$/, 'connected', connections.renderDetail],
  [/^\/settings\/integrations\/webhooks\/?$/, 'webhooks', webhooks.render],
  [/^\/settings\/users\/?$/, 'users', users.render],
  [/^\/settings\/account\/?$/, 'account', account.render],
  [/^\/settings\/notifications\/?$/, 'notifications', notifications.render],
  [/^\/settings\/audit-log\/?$/, 'audit', audit.render],
];

const NAV = [
  ['Integrations', [
    ['api-keys', 'API Keys', '/settings/integrations/api-keys'],
    ['all', 'All Integrations', '/settings/integrations/all'],
    ['connected', 'Connected Apps', '/settings/integrations/connected'],
    ['webhooks', 'Webhooks', '/settings/integrations/webhooks'],
  ]],
  ['Organization', [
    ['users', 'Users', '/settings/users', 'users.manage'],
    ['notifications', 'Notifications', '/settings/notifications'],
    ['account', 'My account', '/settings/account'],
    ['audit', 'Audit log', '/settings/audit-log'],
  ]],
];

const INTEGRATION_TABS = NAV[0][1];

const main = document.getElementById('main');
const nav = document.getElementById('nav');
let context = null;
let renderToken = 0;

function navigate(path, { replace: replaceState = false } = {}) {
  if (replaceState) history.replaceState({}, '', path);
  else history.pushState({}, '', path);
  route();
}

/** The Settings > Integrations tabs, at the top of each of their pages. */
function integrationTabs(active) {
  return h(
    'nav',
    { class: 'tabs', 'aria-label': 'Integrations' },
    INTEGRATION_TABS.map(([id, label, href]) =>
      h('a', { href, 'aria-current': id === active ? 'page' : null }, label),
    ),
  );
}

function renderNav(active) {
  replace(
    nav,
    NAV.map(([group, items]) =>
      h(
        'div',
        {},
        h('p', { class: 'nav-group' }, group),
        h(
          'ul',
          {},
          items
            .filter(([, , , permission]) => !permission || context.can(permission))
            .map(([id, label, href]) => h('li', {}, h('a', { href, 'aria-current': id === active ? 'page' : null }, label))),
        ),
      ),
    ),
  );
}

async function route() {
  const path = window.location.pathname;
  const token = ++renderToken;
  for (const [pattern, id, render] of ROUTES) {
    const match = path.match(pattern);
    if (!match) continue;
    renderNav(id);
    const page = h('div', { class: 'page' });
    // A page that renders slowly must not land on top of the next one.
    const isCurrent = () => token === renderToken;
    try {
      const outcome = await render(page, { ...context, isCurrent, tabs: integrationTabs }, ...match.slice(1).map(decodeURIComponent));
      if (outcome && outcome.redirect) {
        navigate(outcome.redirect, { replace: true });
        return;
      }
    } catch (err) {
      if (!isCurrent()) return;
      replace(page, errorBox(err.message || 'This page could not be loaded.'));
    }
    if (!isCurrent()) return;
    replace(main, page);
    const heading = main.querySelector('h1');
    document.title = `${heading ? heading.textContent : 'Settings'} · Otesse`;
    const focus = main.querySelector('[data-autofocus]');
    if (focus) {
      if (!focus.hasAttribute('tabindex') && focus.tagName === 'H3') focus.setAttribute('tabindex', '-1');
      focus.scrollIntoView({ block: 'center' });
      focus.focus();
    } else {
      main.focus({ preventScroll: true });
    }
    return;
  }
  renderNav(null);
  replace(main, h('h1', {}, 'Page not found'), h('p', {}, h('a', { href: '/settings/integrations/api-keys' }, 'Go to API Keys')));
}

/** The unread count on the bell. */
async function refreshBell() {
  const bell = document.getElementById('bell');
  const count = document.getElementById('bell-count');
  try {
    const page = await get('/notifications?unread=true&limit=100');
    const unread = page.data.length;
    const text = page.has_more ? '99+' : String(unread);
    count.textContent = text;
    count.hidden = unread === 0;
    bell.setAttribute('aria-label', unread === 0 ? 'Notifications, none unread' : `Notifications, ${text} unread`);
  } catch {
    // The bell is a convenience: the page still works without it.
  }
}

// Links inside the app change the route without a reload.
document.addEventListener('click', (event) => {
  const link = event.target.closest('a[href]');
  if (!link || event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey) return;
  const url = new URL(link.href, window.location.href);
  if (url.origin !== window.location.origin || !url.pathname.startsWith('/settings')) return;
  event.preventDefault();
  navigate(url.pathname + url.search);
});
window.addEventListener('popstate', route);

document.getElementById('sign-out').addEventListener('click', async () => {
  try {
    await del('/sessions/current');
  } catch (err) {
    toast(err.message, 'error');
  }
  window.location.assign('/');
});

async function start() {
  const me = await get('/me');
  const permissions = new Set(me.permissions);
  context = {
    me,
    can: (permission) => permissions.has(permission),
    isAdmin: me.user.role === 'admin',
    navigate,
    refreshBell,
  };
  document.getElementById('organization-name').textContent = me.organization.name;
  document.getElementById('user-email').textContent = me.user.email;
  refreshBell();
  await route();
}

start().catch((err) => {
  replace(main, errorBox(err.message || 'The dashboard could not start.'));
});
