/**
 * Payload values in the detail pane: text blocks that fold when long, producer-truncated strings with
 * their full length, chat messages as a conversation, and nested objects as key/value lists.
 * All text goes in through dom.el (textContent).
 */
import { button, copyButton, el } from './dom';
import { asTruncated, isObject } from './schema';

const FOLD_CHARS = 600; // longer text starts folded
const FOLD_LINES = 10;
const MAX_DEPTH = 6; // deeper structures are shown as JSON text

export function toText(value: unknown): string {
  const cut = asTruncated(value);
  if (cut) {
    return cut.preview;
  }
  return typeof value === 'string' ? value : (JSON.stringify(value, null, 2) ?? String(value));
}

/** A block of text: folded when long, with a copy button; `note` says what the producer cut. */
export function textBlock(text: string, note = ''): HTMLElement {
  const long = text.length > FOLD_CHARS || text.split('\n', FOLD_LINES + 1).length > FOLD_LINES;
  const body = el('div', 'wb-text', text);
  const tools = el('div', 'wb-text-tools', [copyButton(() => text, 'this text')]);
  const block = el('div', 'wb-text-block', [body, note ? el('div', 'wb-note', note) : null, tools]);
  if (long) {
    block.classList.add('wb-folded');
    const toggle = button(
      `Show all (${text.length.toLocaleString('en-US')} characters)`,
      'Show the whole text',
      () => {
        const folded = block.classList.toggle('wb-folded');
        toggle.textContent = folded
          ? `Show all (${text.length.toLocaleString('en-US')} characters)`
          : 'Show less';
      },
      'wb-fold'
    );
    tools.prepend(toggle);
  }
  return block;
}

function truncatedNote(length: number, shown: number): string {
  return `… truncated in the notebook: ${shown.toLocaleString('en-US')} of ${length.toLocaleString('en-US')} characters shown`;
}

function scalar(value: unknown): HTMLElement {
  const kind = value === null ? 'null' : typeof value;
  return el('span', `wb-scalar wb-scalar-${kind}`, value === null ? 'null' : String(value));
}

/** Any JSON value from a payload. */
export function renderValue(value: unknown, depth = 0): HTMLElement {
  const cut = asTruncated(value);
  if (cut) {
    return textBlock(cut.preview, truncatedNote(cut.length, cut.preview.length));
  }
  if (typeof value === 'string') {
    return value.length > 80 || value.includes('\n') ? textBlock(value) : el('span', 'wb-string', value);
  }
  if (value === null || typeof value !== 'object') {
    return scalar(value);
  }
  if (depth >= MAX_DEPTH) {
    return textBlock(JSON.stringify(value, null, 2));
  }
  const entries = Array.isArray(value)
    ? value.map((item, i) => [`${i}`, item] as const)
    : Object.entries(value as Record<string, unknown>);
  if (!entries.length) {
    return el('span', 'wb-scalar', Array.isArray(value) ? '[]' : '{}');
  }
  const list = el('div', 'wb-kv');
  for (const [key, item] of entries) {
    list.appendChild(el('div', 'wb-kv-key', key, { title: key }));
    list.appendChild(el('div', 'wb-kv-value', [renderValue(item, depth + 1)]));
  }
  return list;
}

interface IMessage {
  role: string;
  content: unknown;
}

/** `[{role, content}, ...]`: an LLM's chat messages. */
export function asMessages(value: unknown): IMessage[] | null {
  if (!Array.isArray(value) || !value.length) {
    return null;
  }
  const ok = value.every(m => isObject(m) && typeof m.role === 'string' && 'content' in m);
  return ok ? (value as IMessage[]) : null;
}

function contentText(content: unknown): string {
  if (Array.isArray(content)) {
    // multi-part content: keep the text parts, name the rest
    return content
      .map(part =>
        isObject(part) && typeof part.text === 'string'
          ? part.text
          : isObject(part) && typeof part.type === 'string'
            ? `[${part.type}]`
            : toText(part)
      )
      .join('\n');
  }
  return toText(content);
}

export function conversation(messages: IMessage[], answer?: unknown): HTMLElement {
  const list = el('div', 'wb-chat');
  const add = (role: string, content: unknown) => {
    const cut = asTruncated(content);
    const text = contentText(content);
    list.appendChild(
      el('div', `wb-msg wb-msg-${/^[a-z_]+$/.test(role) ? role : 'other'}`, [
        el('div', 'wb-msg-role', role),
        textBlock(text, cut ? truncatedNote(cut.length, cut.preview.length) : '')
      ])
    );
  };
  for (const message of messages) {
    add(message.role, message.content);
  }
  if (answer !== undefined && answer !== null) {
    add('assistant', answer);
  }
  return list;
}
