// Settings > Notifications (K13): the signed-in user's notifications, unread first marked, and
// marking them read (the bell's count follows).

import { get, post } from '../api.js';
import { h, replace } from '../dom.js';
import { toast, actionButton } from '../ui.js';
import { formatDateTime } from '../format.js';

export async function render(page, ctx) {
  const list = await get('/notifications?limit=50');
  const rerender = async () => {
    if (!page.isConnected) return;
    const fresh = h('div', { class: 'page' });
    await render(fresh, ctx);
    page.replaceWith(fresh);
    await ctx.refreshBell();
  };
  const unread = list.data.filter((n) => !n.read_at);
  const header = h('div', { class: 'page-header' }, h('div', {}, h('p', { class: 'breadcrumb' }, 'Settings'), h('h1', {}, 'Notifications'),
    h('p', {}, unread.length ? `${unread.length} unread.` : 'You are all caught up.')));
  if (unread.length > 1) {
    header.append(actionButton('Mark all as read', async () => {
      try {
        for (const n of unread) await post(`/notifications/${n.id}/read`);
      } catch (err) {
        toast(err.message, 'error');
      }
      await rerender();
    }, { small: false }));
  }
  const items = list.data.map((n) => {
    const link = subjectLink(n.subject);
    return h('li', { class: ['notification', !n.read_at && 'unread'], 'data-kind': n.kind },
      h('h2', { class: 'notification-title' }, n.read_at ? null : h('span', { class: 'sr-only' }, 'Unread: '), n.title),
      h('p', {}, n.body),
      h('time', { datetime: n.created_at }, formatDateTime(n.created_at)),
      h('div', { class: 'actions' },
        link,
        n.read_at ? null : actionButton('Mark as read', async () => {
          try {
            await post(`/notifications/${n.id}/read`);
          } catch (err) {
            toast(err.message, 'error');
          }
          await rerender();
        }, { ariaLabel: `Mark "${n.title}" as read` })));
  });
  replace(page, header, items.length ? h('ul', { class: 'notification-list' }, items) : h('p', { class: 'empty' }, 'No notifications yet. Keys nearing expiry are announced here.'));
}

function subjectLink(subject) {
  const [kind, id] = (subject || '').split(':');
  if (kind === 'api_key' && id) return h('a', { href: `/settings/integrations/api-keys/${id}`, class: 'button small' }, 'View key');
  if (kind === 'webhook_endpoint') return h('a', { href: '/settings/integrations/webhooks', class: 'button small' }, 'View webhooks');
  return null;
}
