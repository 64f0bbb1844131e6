// Shared pieces: modals (focus kept inside, Escape closes, focus returns to the opener),
// confirmations, toasts, badges, tables that stack on narrow screens, a one-time secret with a
// copy button, and bar charts drawn as inline SVG.

import { h, s, uid } from './dom.js';

const stack = [];

function syncInert() {
  const top = stack[stack.length - 1];
  for (const element of document.body.children) {
    // The toasts stay live: a toast raised while a modal is open is still announced.
    element.inert = Boolean(top) && element !== top.backdrop && element.id !== 'toasts';
  }
}

function focusables(root) {
  return Array.from(
    root.querySelectorAll('a[href], button, input, select, textarea, [tabindex]:not([tabindex="-1"])'),
  ).filter((el) => !el.disabled && !el.closest('[hidden]') && el.getClientRects().length > 0);
}

document.addEventListener('keydown', (event) => {
  const top = stack[stack.length - 1];
  if (!top) return;
  if (event.key === 'Escape') {
    event.preventDefault();
    top.requestClose();
  } else if (event.key === 'Tab') {
    const items = focusables(top.dialog);
    if (items.length === 0) {
      event.preventDefault();
      top.dialog.focus();
      return;
    }
    const first = items[0];
    const last = items[items.length - 1];
    if (event.shiftKey && (document.activeElement === first || !top.dialog.contains(document.activeElement))) {
      event.preventDefault();
      last.focus();
    } else if (!event.shiftKey && (document.activeElement === last || !top.dialog.contains(document.activeElement))) {
      event.preventDefault();
      first.focus();
    }
  }
});

/**
 * Opens a modal dialog. `onRequestClose` (Escape, the × button) may refuse or ask first; without
 * it they close the modal. Answers `{dialog, body, foot, close, setTitle, requestClose}`.
 */
export function openModal({ title, wide = false, role = 'dialog', onRequestClose, onClose } = {}) {
  const opener = document.activeElement;
  const titleId = uid('modal-title');
  const heading = h('h2', { id: titleId }, title);
  const body = h('div', { class: 'modal-body form' });
  const foot = h('div', { class: 'modal-foot' });
  const closeButton = h('button', { type: 'button', class: 'button ghost small', 'aria-label': 'Close' }, '×');
  const dialog = h(
    'div',
    { class: ['modal', wide && 'wide'], role, 'aria-modal': 'true', 'aria-labelledby': titleId, tabindex: '-1' },
    h('div', { class: 'modal-head' }, heading, closeButton),
    body,
    foot,
  );
  const backdrop = h('div', { class: 'modal-backdrop' }, dialog);
  let closed = false;
  const entry = {
    backdrop,
    dialog,
    body,
    foot,
    close() {
      if (closed) return;
      closed = true;
      const index = stack.indexOf(entry);
      if (index >= 0) stack.splice(index, 1);
      backdrop.remove();
      syncInert();
      if (onClose) onClose();
      if (opener && opener.isConnected && typeof opener.focus === 'function') opener.focus();
    },
    /** Replaceable: what Escape and × do (a shown-once secret asks first). */
    onRequestClose,
    requestClose() {
      if (entry.onRequestClose) entry.onRequestClose(entry);
      else entry.close();
    },
    setTitle(text) {
      heading.textContent = text;
    },
    get closed() {
      return closed;
    },
  };
  closeButton.addEventListener('click', () => entry.requestClose());
  document.body.append(backdrop);
  stack.push(entry);
  syncInert();
  queueMicrotask(() => entry.focusFirst());
  entry.focusFirst = () => {
    const target = focusables(body)[0] || focusables(foot)[0] || dialog;
    target.focus();
  };
  return entry;
}

/**
 * Asks before something that cannot be undone. Answers true when confirmed.
 * `extra` adds a warning paragraph under the message.
 */
export function confirmDialog({ title, message, extra, confirmLabel = 'Confirm', danger = false }) {
  return new Promise((resolve) => {
    let answered = false;
    const finish = (value) => {
      if (answered) return;
      answered = true;
      modal.close();
      resolve(value);
    };
    const modal = openModal({ title, role: 'alertdialog', onRequestClose: () => finish(false) });
    modal.body.append(h('p', { class: 'confirm-message' }, message));
    if (extra) modal.body.append(h('p', { class: 'warning-box confirm-extra', role: 'note' }, extra));
    const cancel = h('button', { type: 'button', class: 'button', on: { click: () => finish(false) } }, 'Cancel');
    const confirm = h(
      'button',
      { type: 'button', class: ['button', danger ? 'danger' : 'primary'], on: { click: () => finish(true) } },
      confirmLabel,
    );
    modal.foot.append(cancel, confirm);
    queueMicrotask(() => cancel.focus());
  });
}

/** A short message in the page's live region. */
export function toast(message, kind = 'info') {
  const region = document.getElementById('toasts');
  if (!region) return;
  const item = h('div', { class: ['toast', kind === 'error' && 'error'] }, h('span', {}, message));
  const dismiss = h('button', { type: 'button', on: { click: () => item.remove() } }, 'Dismiss');
  item.append(dismiss);
  region.append(item);
  setTimeout(() => item.remove(), 8000);
}

export function badge(text, kind = 'neutral') {
  return h('span', { class: ['badge', kind] }, text);
}

/** An error message with role=alert, or null. */
export function errorBox(message) {
  return h('p', { class: 'error-box', role: 'alert' }, message);
}

/**
 * A table whose cells are labelled for the stacked small-screen layout.
 * columns: [{label, cell(row) -> node|string, srOnly?}]
 */
export function table({ caption, columns, rows, rowClass, empty = 'Nothing here yet.' }) {
  if (rows.length === 0) return h('p', { class: 'empty' }, empty);
  return h(
    'table',
    { class: 'table' },
    caption ? h('caption', { class: 'sr-only' }, caption) : null,
    h('thead', {}, h('tr', {}, columns.map((c) => h('th', { scope: 'col' }, c.srOnly ? h('span', { class: 'sr-only' }, c.label) : c.label)))),
    h(
      'tbody',
      {},
      rows.map((row) =>
        h(
          'tr',
          { class: rowClass ? rowClass(row) : null },
          columns.map((c) => h('td', { 'data-label': c.label, class: c.srOnly ? 'no-label' : null }, c.cell(row))),
        ),
      ),
    ),
  );
}

async function copyText(text, input) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    input.select();
    try {
      return document.execCommand('copy');
    } catch {
      return false;
    }
  }
}

/**
 * A secret shown once: read-only field, copy button, a live status line. `copied()` tells
 * whether the user copied it.
 */
export function secretReveal({ label, value }) {
  let copied = false;
  const input = h('input', { type: 'text', readonly: true, value, class: 'secret-value', 'aria-label': label, spellcheck: 'false' });
  const status = h('p', { class: 'hint', role: 'status' });
  const button = h('button', { type: 'button', class: 'button primary copy-button' }, 'Copy to clipboard');
  button.addEventListener('click', async () => {
    if (await copyText(value, input)) {
      copied = true;
      button.textContent = 'Copied';
      status.textContent = 'Copied to clipboard.';
    } else {
      input.select();
      status.textContent = 'Copying was blocked: the text is selected, press Ctrl+C (or ⌘C) to copy it.';
    }
  });
  input.addEventListener('copy', () => {
    copied = true;
  });
  const node = h('div', { class: 'field' }, h('div', { class: 'secret-box' }, input, button), status);
  return { node, copied: () => copied, button };
}

/**
 * A bar chart. `points`: [{label, value, second?}]; the SVG is labelled with `title` and a
 * summary for screen readers.
 */
export function barChart({ title, summary, points, secondLabel, firstLabel }) {
  const width = 640;
  const height = 200;
  const left = 44;
  const bottom = 28;
  const top = 12;
  const max = Math.max(1, ...points.map((p) => (p.value || 0) + (p.second || 0)));
  const slot = (width - left - 8) / Math.max(points.length, 1);
  const barWidth = Math.max(4, Math.min(36, slot * 0.7));
  const scale = (v) => ((height - top - bottom) * v) / max;
  const titleId = uid('chart-title');
  const descId = uid('chart-desc');
  const svg = s(
    'svg',
    { class: 'chart', viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-labelledby': `${titleId} ${descId}` },
    s('title', { id: titleId }, title),
    s('desc', { id: descId }, summary),
    s('line', { class: 'axis', x1: left, y1: height - bottom, x2: width, y2: height - bottom }),
    s('text', { x: left - 6, y: top + 4, 'text-anchor': 'end' }, max.toLocaleString()),
    s('text', { x: left - 6, y: height - bottom, 'text-anchor': 'end' }, '0'),
  );
  const labelEvery = Math.ceil(points.length / 8);
  points.forEach((point, index) => {
    const x = left + index * slot + (slot - barWidth) / 2;
    const first = scale(point.value || 0);
    const second = scale(point.second || 0);
    const base = height - bottom;
    svg.append(s('rect', { class: 'bar', x, y: base - first, width: barWidth, height: first },
      s('title', {}, `${point.label}: ${(point.value || 0).toLocaleString()}${firstLabel ? ` ${firstLabel}` : ''}`)));
    if (point.second) {
      svg.append(s('rect', { class: 'bar second', x, y: base - first - second, width: barWidth, height: second },
        s('title', {}, `${point.label}: ${point.second.toLocaleString()} ${secondLabel}`)));
    }
    if (index % labelEvery === 0) {
      svg.append(s('text', { x: x + barWidth / 2, y: height - 10, 'text-anchor': 'middle' }, point.label));
    }
  });
  return svg;
}

/** A button that runs `action` once at a time: disabled while it runs. */
export function actionButton(label, action, { kind = '', small = true, ariaLabel } = {}) {
  const button = h('button', { type: 'button', class: ['button', kind, small && 'small'], 'aria-label': ariaLabel || null }, label);
  button.addEventListener('click', async () => {
    if (button.disabled) return;
    button.disabled = true;
    try {
      await action(button);
    } finally {
      if (button.isConnected) button.disabled = false;
    }
  });
  return button;
}

/**
 * Turns `modal` into the one-time display of a secret (an API key, a webhook signing secret):
 * the value with a copy button, and closing without copying asks `confirmMessage` first.
 * `onClosed` runs once the modal is closed.
 */
export function revealOnce(modal, { title, warning, label, value, details = [], confirmMessage, onClosed }) {
  modal.setTitle(title);
  const reveal = secretReveal({ label, value });
  const list = details.length
    ? h('dl', { class: 'details' }, details.map(([term, text]) => [h('dt', {}, term), h('dd', {}, text)]))
    : null;
  let asking = false;
  const close = async () => {
    if (asking) return;
    if (!reveal.copied()) {
      asking = true;
      const sure = await confirmDialog({
        title: 'Close without copying?',
        message: confirmMessage,
        confirmLabel: 'Close anyway',
        danger: true,
      });
      asking = false;
      if (!sure) return;
    }
    modal.close();
    if (onClosed) await onClosed();
  };
  modal.onRequestClose = close;
  const done = h('button', { type: 'button', class: 'button', id: 'reveal-done', on: { click: close } }, 'Done');
  const body = [h('p', { class: 'warning-box' }, warning), list, reveal.node];
  modal.body.replaceChildren();
  for (const node of body) if (node) modal.body.append(node);
  modal.foot.replaceChildren(done);
  reveal.button.focus();
  return reveal;
}
