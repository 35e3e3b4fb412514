/** Search (with match count, next/previous), filters by kind and status, expand/collapse all. */
import { button, el } from './dom';
import { kindLabel } from './kinds';

export interface IToolbarCallbacks {
  search(query: string, step: number): void;
  filter(kind: string, status: string): void;
  expandAll(): void;
  collapseAll(): void;
}

export class Toolbar {
  readonly node: HTMLDivElement;
  readonly input: HTMLInputElement;
  private readonly count: HTMLSpanElement;

  constructor(kinds: string[], callbacks: IToolbarCallbacks) {
    this.input = el('input', 'wb-search', [], {
      type: 'search',
      placeholder: 'Search spans',
      'aria-label': 'Search spans (Enter: next match, Shift+Enter: previous)',
      spellcheck: 'false'
    });
    this.count = el('span', 'wb-match-count', '', { 'aria-live': 'polite' });
    const kind = el('select', 'wb-filter wb-filter-kind', [el('option', '', 'All kinds', { value: '' })], {
      'aria-label': 'Show spans of this kind'
    });
    for (const name of kinds) {
      kind.appendChild(el('option', '', `${kindLabel(name)} · ${name}`, { value: name }));
    }
    const status = el(
      'select',
      'wb-filter wb-filter-status',
      [
        el('option', '', 'Any status', { value: '' }),
        el('option', '', 'Failed', { value: 'ERROR' }),
        el('option', '', 'OK', { value: 'OK' }),
        el('option', '', 'Running', { value: 'IN_PROGRESS' })
      ],
      { 'aria-label': 'Show spans with this status' }
    );
    const onFilter = () => callbacks.filter(kind.value, status.value);
    kind.addEventListener('change', onFilter);
    status.addEventListener('change', onFilter);
    this.input.addEventListener('input', () => callbacks.search(this.input.value, 0));
    this.input.addEventListener('keydown', event => {
      if (event.key === 'Enter') {
        callbacks.search(this.input.value, event.shiftKey ? -1 : 1);
      } else if (event.key === 'Escape') {
        this.input.value = '';
        callbacks.search('', 0);
      } else {
        return;
      }
      event.preventDefault();
      event.stopPropagation();
    });
    this.node = el(
      'div',
      'wb-toolbar',
      [
        el('div', 'wb-search-group', [
          this.input,
          this.count,
          button(
            '↑',
            'Previous match (Shift+Enter)',
            () => callbacks.search(this.input.value, -1),
            'wb-prev'
          ),
          button('↓', 'Next match (Enter)', () => callbacks.search(this.input.value, 1), 'wb-next')
        ]),
        kind,
        status,
        button('Expand all', 'Open every span', () => callbacks.expandAll(), 'wb-expand-all'),
        button('Collapse all', 'Close every span', () => callbacks.collapseAll(), 'wb-collapse-all')
      ],
      // typing in the box must not trigger notebook shortcuts
      { 'data-lm-suppress-shortcuts': 'true' }
    );
  }

  setCount(current: number, total: number, query: string): void {
    this.count.textContent = !query.trim() ? '' : total ? `${current} of ${total}` : 'no match';
    this.count.classList.toggle('wb-no-match', Boolean(query.trim()) && total === 0);
  }
}
