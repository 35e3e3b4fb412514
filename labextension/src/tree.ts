/**
 * The span tree with its waterfall, virtualized: only the rows in the viewport (plus a few) exist in
 * the DOM, absolutely placed inside a spacer as tall as all open rows. That keeps a 1,000-span trace
 * as quick to open and scroll as a 10-span one.
 *
 * Keyboard (the list has focus): Up/Down move the selection and the detail pane follows, Right opens (or
 * steps into), Left closes (or steps out), Home/End, PageUp/PageDown; Enter or Space selects again.
 */
import { el } from './dom';
import { formatMs, formatTokens, formatUsd } from './format';
import { INode, IRow, TraceModel } from './model';
import { kindClass, kindLabel } from './kinds';
import { toText } from './values';

export const ROW_HEIGHT = 24;
const MAX_VISIBLE_ROWS = 18; // the list scrolls beyond this
const OVERSCAN = 6;
const MIN_BAR = 0.6; // percent of the lane

export interface ITreeCallbacks {
  /** a row was chosen (click, Enter): show its detail */
  select(node: INode): void;
}

export class SpanTree {
  readonly node: HTMLDivElement;
  private readonly spacer: HTMLDivElement;
  private rows: IRow[] = [];
  private rowIndex = new Map<INode, number>();
  private drawn = { first: -1, last: -1 };
  private frame = 0;
  active: INode | null = null;
  selected: INode | null = null;
  matches = new Set<INode>();
  currentMatch: INode | null = null;

  constructor(
    private readonly model: TraceModel,
    private readonly callbacks: ITreeCallbacks
  ) {
    this.spacer = el('div', 'wb-tree-spacer');
    this.node = el('div', 'wb-tree', [this.spacer], {
      role: 'tree',
      tabindex: '0',
      'aria-label': 'Spans of the trace',
      // JupyterLab's notebook shortcuts (arrows move cells, Enter edits) must not fire in here
      'data-lm-suppress-shortcuts': 'true'
    });
    this.node.addEventListener('scroll', () => this.schedule());
    this.node.addEventListener('keydown', event => this.onKey(event));
    this.node.addEventListener('click', event => this.onClick(event));
  }

  get rowCount(): number {
    return this.rows.length;
  }

  /** Recompute the open rows (after opening, closing, filtering) and redraw. */
  refresh(): void {
    this.rows = this.model.visibleRows();
    this.rowIndex = new Map(this.rows.map((row, i) => [row.node, i]));
    if (this.active && !this.rowIndex.has(this.active)) {
      this.active = this.nearestShown(this.active);
    }
    const height = this.rows.length * ROW_HEIGHT;
    this.spacer.style.height = `${height}px`;
    this.node.style.height = `${Math.min(height, MAX_VISIBLE_ROWS * ROW_HEIGHT) + 2}px`;
    this.drawn = { first: -1, last: -1 };
    this.draw();
  }

  private nearestShown(node: INode): INode | null {
    for (let up: INode | null = node.parent; up; up = up.parent) {
      if (this.rowIndex.has(up)) {
        return up;
      }
    }
    return this.rows[0]?.node ?? null;
  }

  private schedule(): void {
    if (!this.frame) {
      this.frame = requestAnimationFrame(() => {
        this.frame = 0;
        this.draw();
      });
    }
  }

  /** Draw the rows in the viewport. Before the node is attached, its height is not known yet: assume the maximum. */
  draw(force = false): void {
    const viewport = this.node.clientHeight || MAX_VISIBLE_ROWS * ROW_HEIGHT;
    const first = Math.max(0, Math.floor(this.node.scrollTop / ROW_HEIGHT) - OVERSCAN);
    const last = Math.min(
      this.rows.length,
      Math.ceil((this.node.scrollTop + viewport) / ROW_HEIGHT) + OVERSCAN
    );
    if (!force && first === this.drawn.first && last === this.drawn.last) {
      return;
    }
    this.drawn = { first, last };
    const fragment = document.createDocumentFragment();
    for (let i = first; i < last; i++) {
      fragment.appendChild(this.renderRow(this.rows[i], i));
    }
    this.spacer.replaceChildren(fragment);
    const active = this.active ? this.rowIndex.get(this.active) : undefined;
    this.node.setAttribute('aria-activedescendant', active !== undefined ? this.rowId(active) : '');
  }

  private rowId(index: number): string {
    return `wb-row-${this.model.trace.traceId.replace(/[^\w-]/g, '')}-${index}`;
  }

  private renderRow(row: IRow, index: number): HTMLElement {
    const { node, context } = row;
    const span = node.span;
    const trace = this.model.trace;
    const open = this.model.expanded.has(node);
    const classes = ['wb-row'];
    if (span.status === 'ERROR') {
      classes.push('wb-failed');
    } else if (node.errorsBelow > 0) {
      classes.push('wb-error-path');
    }
    if (node.attempt) {
      classes.push('wb-attempt');
    }
    if (context) {
      classes.push('wb-context');
    }
    if (node === this.active) {
      classes.push('wb-active');
    }
    if (node === this.selected) {
      classes.push('wb-selected');
    }
    if (this.matches.has(node)) {
      classes.push(node === this.currentMatch ? 'wb-match wb-match-current' : 'wb-match');
    }
    const twisty = el('span', 'wb-twisty', node.children.length ? (open ? '▾' : '▸') : '', {
      'data-action': 'toggle'
    });
    const name = el('span', 'wb-name', span.name);
    const label = el('div', 'wb-cell wb-cell-name', [
      el('span', 'wb-indent', '', { style: `width:${node.depth * 14}px` }),
      twisty,
      el('span', `wb-kind ${kindClass(span.kind)}`, kindLabel(span.kind)),
      name
    ]);
    const attrs = span.attributes;
    if (node.attempt) {
      label.appendChild(el('span', 'wb-tag wb-tag-attempt', 'failed try'));
    }
    if (attrs.fell_back === true) {
      label.appendChild(
        el(
          'span',
          'wb-tag wb-tag-fallback',
          `fallback → ${typeof attrs.model_used === 'string' ? attrs.model_used : '?'}`
        )
      );
    }
    if (attrs.cache_hit === true) {
      label.appendChild(el('span', 'wb-tag', 'cache'));
    }
    // the message on the span where the failure started; its ancestors are red, and the detail says why
    if (span.error && node.errorsBelow === 0) {
      label.appendChild(
        el('span', 'wb-row-error', `${span.error.type}: ${toText(span.error.message).slice(0, 200)}`)
      );
    }
    const hasKids = node.children.length > 0;
    const tokens = formatTokens(node.tokens);
    const cost = formatUsd(node.cost);
    const total = trace.durationMs || 1;
    // a bar is at least MIN_BAR wide, and one that starts at the very end still shows inside the lane
    const start = Math.min(100, (span.startMs / total) * 100);
    const width = Math.max(MIN_BAR, span.durationMs === null ? 100 - start : (span.durationMs / total) * 100);
    const left = Math.max(0, Math.min(start, 100 - width));
    const barClasses = ['wb-bar', kindClass(span.kind)];
    if (span.status === 'ERROR') {
      barClasses.push('wb-bar-error');
    }
    if (span.durationMs === null) {
      barClasses.push('wb-bar-open');
    }
    const bar = el('div', barClasses.join(' '), [], {
      style: `left:${left.toFixed(3)}%;width:${Math.min(width, 100 - left).toFixed(3)}%`
    });
    const rowNode = el(
      'div',
      classes.join(' '),
      [
        label,
        el('div', 'wb-cell wb-num wb-latency', formatMs(span.durationMs)),
        el('div', 'wb-cell wb-num wb-tokens', tokens, {
          title: hasKids && tokens ? 'tokens, with children' : 'tokens'
        }),
        el('div', 'wb-cell wb-num wb-cost', cost, {
          title: hasKids && cost ? 'cost, with children' : 'cost'
        }),
        el('div', 'wb-cell wb-timeline', [bar])
      ],
      {
        id: this.rowId(index),
        role: 'treeitem',
        'aria-level': `${node.depth + 1}`,
        'aria-selected': node === this.selected ? 'true' : 'false',
        'data-index': `${index}`,
        'data-span-id': span.id,
        title: `${span.name} · ${span.kind} · ${formatMs(span.durationMs)} from +${formatMs(span.startMs)}`,
        style: `top:${index * ROW_HEIGHT}px`
      }
    );
    if (hasKids) {
      rowNode.setAttribute('aria-expanded', open ? 'true' : 'false');
    }
    return rowNode;
  }

  private onClick(event: MouseEvent): void {
    const target = event.target as HTMLElement;
    const rowNode = target.closest<HTMLElement>('.wb-row');
    if (!rowNode) {
      return;
    }
    const row = this.rows[Number(rowNode.dataset.index)];
    if (!row) {
      return;
    }
    this.node.focus({ preventScroll: true });
    if (target.closest('[data-action="toggle"]')) {
      this.active = row.node;
      this.toggle(row.node);
      return;
    }
    this.active = row.node;
    this.select(row.node);
  }

  toggle(node: INode, open?: boolean): void {
    if (!node.children.length) {
      return;
    }
    const isOpen = this.model.expanded.has(node);
    if (open === isOpen) {
      return;
    }
    if (isOpen) {
      this.model.expanded.delete(node);
    } else {
      this.model.expanded.add(node);
    }
    this.refresh();
  }

  select(node: INode): void {
    this.selected = node;
    this.callbacks.select(node);
    this.draw(true);
  }

  /** Make the node's row current, open its ancestors and scroll it into view. */
  focusNode(node: INode, select: boolean): void {
    if (!this.rowIndex.has(node)) {
      this.model.reveal(node);
      this.refresh();
    }
    this.active = node;
    this.scrollTo(node);
    if (select) {
      this.select(node);
    } else {
      this.draw(true);
    }
  }

  private scrollTo(node: INode): void {
    const index = this.rowIndex.get(node);
    if (index === undefined) {
      return;
    }
    const top = index * ROW_HEIGHT;
    const viewport = this.node.clientHeight || MAX_VISIBLE_ROWS * ROW_HEIGHT;
    if (top < this.node.scrollTop) {
      this.node.scrollTop = top;
    } else if (top + ROW_HEIGHT > this.node.scrollTop + viewport) {
      this.node.scrollTop = top + ROW_HEIGHT - viewport;
    }
  }

  private onKey(event: KeyboardEvent): void {
    if (event.altKey || event.ctrlKey || event.metaKey || !this.rows.length) {
      return;
    }
    const current = this.active ? (this.rowIndex.get(this.active) ?? 0) : -1;
    // moving selects: the detail pane follows the keys, as in a file list (opening and closing do not)
    const move = (index: number) => {
      const row = this.rows[Math.max(0, Math.min(this.rows.length - 1, index))];
      this.focusNode(row.node, row.node !== this.selected);
    };
    const page = Math.max(1, Math.floor((this.node.clientHeight || ROW_HEIGHT) / ROW_HEIGHT) - 1);
    const node = this.active;
    switch (event.key) {
      case 'ArrowDown':
        move(current + 1);
        break;
      case 'ArrowUp':
        move(current < 0 ? 0 : current - 1);
        break;
      case 'Home':
        move(0);
        break;
      case 'End':
        move(this.rows.length - 1);
        break;
      case 'PageDown':
        move(current + page);
        break;
      case 'PageUp':
        move(current - page);
        break;
      case 'ArrowRight':
        if (!node) {
          move(0);
        } else if (node.children.length && !this.model.expanded.has(node)) {
          this.toggle(node, true);
        } else if (node.children.length) {
          move(current + 1);
        }
        break;
      case 'ArrowLeft':
        if (!node) {
          move(0);
        } else if (node.children.length && this.model.expanded.has(node)) {
          this.toggle(node, false);
        } else if (node.parent && this.rowIndex.has(node.parent)) {
          this.focusNode(node.parent, true);
        }
        break;
      case 'Enter':
      case ' ':
        if (node) {
          this.select(node);
        } else {
          move(0);
        }
        break;
      default:
        return;
    }
    event.preventDefault();
    event.stopPropagation();
  }
}
