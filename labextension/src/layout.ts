/**
 * How the span list shares the width: the number columns are as wide as their longest value (an empty
 * column takes nothing), the name column takes what the numbers do not need, and the list is as wide as its
 * longest name needs before the detail pane gets the rest. Too narrow for both: the detail goes under the
 * list. A divider between them drags (or moves with the arrow keys); where it was dropped holds for every
 * trace view of this page until a double-click gives the choice back.
 */
import { el } from './dom';
import { formatMs, formatTokens, formatUsd } from './format';
import { kindLabel } from './kinds';
import { TraceModel } from './model';

const INDENT_PX = 14; // per depth, as tree.ts draws it
const NAME_CELL_EXTRA_PX = 12 + 3 * 4 + 14 + 6; // twisty, the gaps between the cell's parts, the badge's padding, a margin
export const TIMELINE_MIN_PX = 90;
export const COLUMN_GAP_PX = 6;
const NAME_CAP_PX = 460; // past this, a name is a sentence: let it be cut
export const DETAIL_MIN_PX = 280;
const TREE_MIN_PX = 240;

let savedSplit: number | null = null; // the dropped divider, as a fraction of the body's width

export interface IColumns {
  /** CSS widths of the latency, tokens and cost columns */
  latency: string;
  tokens: string;
  cost: string;
  /** the same, in characters (for the width the list needs) */
  chars: number;
}

function widest(values: string[], header: string): number {
  const longest = values.reduce((n, v) => Math.max(n, v.length), 0);
  return longest === 0 ? 0 : Math.max(longest, header.length);
}

/** Each number column as wide as its longest value (or its header); none at all where every value is empty. */
export function columnWidths(model: TraceModel): IColumns {
  const latency = widest(
    model.nodes.map(n => formatMs(n.span.durationMs)),
    'Latency'
  );
  const tokens = widest(
    model.nodes.map(n => formatTokens(n.tokens)),
    'Tokens'
  );
  const cost = widest(
    model.nodes.map(n => formatUsd(n.cost)),
    'Cost'
  );
  const css = (chars: number) => (chars ? `calc(${chars}ch + 2px)` : '0px');
  return { latency: css(latency), tokens: css(tokens), cost: css(cost), chars: latency + tokens + cost };
}

let canvas: HTMLCanvasElement | null = null;

/** The pixels the widest row's name cell needs (indent, twisty, kind badge, name, tags), in `font`. */
export function nameWidth(model: TraceModel, font: string, badgeFont: string): number {
  canvas ??= document.createElement('canvas');
  const context = canvas.getContext('2d');
  if (!context) {
    return 200;
  }
  const measure = (text: string, withFont: string) => {
    context.font = withFont;
    return context.measureText(text).width;
  };
  let need = 0;
  for (const node of model.nodes) {
    const attrs = node.span.attributes;
    let tags = 0;
    if (node.attempt) {
      tags += measure('failed try', badgeFont) + 14;
    }
    if (attrs.fell_back === true) {
      tags += measure(`fallback → ${String(attrs.model_used ?? '?')}`, badgeFont) + 14;
    }
    const width =
      node.depth * INDENT_PX +
      NAME_CELL_EXTRA_PX +
      measure(kindLabel(node.span.kind), badgeFont) +
      Math.min(measure(node.span.name, font), NAME_CAP_PX) +
      tags;
    need = Math.max(need, width);
  }
  return Math.ceil(need);
}

/** The list's width when nobody dragged: enough for the names and numbers, else what the detail leaves. */
export function treeWidth(bodyWidth: number, namePx: number, numbersPx: number): { px: number; stacked: boolean } {
  if (savedSplit !== null) {
    const px = Math.round(savedSplit * bodyWidth);
    return { px: Math.max(TREE_MIN_PX, Math.min(px, bodyWidth - DETAIL_MIN_PX)), stacked: false };
  }
  const need = namePx + numbersPx + TIMELINE_MIN_PX + 4 * COLUMN_GAP_PX + 4;
  const share = Math.round(bodyWidth * 0.6); // the usual split, when the names fit in it
  if (need <= share) {
    return { px: share, stacked: false };
  }
  if (need + DETAIL_MIN_PX <= bodyWidth) {
    return { px: need, stacked: false };
  }
  return { px: bodyWidth, stacked: true }; // both do not fit side by side: the detail goes under the list
}

/** A vertical divider; `apply(px)` lays the list out at a width, `relayout()` recomputes after a reset. */
export function divider(body: () => HTMLElement, apply: (px: number) => void, relayout: () => void): HTMLElement {
  const node = el('div', 'wb-divider', [], {
    role: 'separator',
    tabindex: '0',
    'aria-orientation': 'vertical',
    'aria-label': 'Drag to give the span list more or less room (arrow keys too; double-click resets)',
    title: 'Drag to resize (double-click resets)',
    'data-lm-suppress-shortcuts': 'true'
  });
  const place = (px: number) => {
    const width = body().clientWidth;
    if (!width) {
      return;
    }
    const clamped = Math.max(TREE_MIN_PX, Math.min(px, width - DETAIL_MIN_PX));
    savedSplit = clamped / width;
    apply(clamped);
  };
  node.addEventListener('pointerdown', event => {
    event.preventDefault();
    event.stopPropagation();
    node.setPointerCapture(event.pointerId);
    node.classList.add('wb-dragging');
    const left = body().getBoundingClientRect().left;
    const move = (e: PointerEvent) => place(e.clientX - left);
    const stop = () => {
      node.classList.remove('wb-dragging');
      node.removeEventListener('pointermove', move);
      node.removeEventListener('pointerup', stop);
      node.removeEventListener('pointercancel', stop);
    };
    node.addEventListener('pointermove', move);
    node.addEventListener('pointerup', stop);
    node.addEventListener('pointercancel', stop);
  });
  node.addEventListener('keydown', event => {
    const pane = node.previousElementSibling as HTMLElement | null;
    const now = pane?.getBoundingClientRect().width ?? 0;
    if (event.key === 'ArrowLeft' || event.key === 'ArrowRight') {
      place(now + (event.key === 'ArrowLeft' ? -24 : 24));
      event.preventDefault();
      event.stopPropagation();
    }
  });
  node.addEventListener('dblclick', () => {
    savedSplit = null;
    relayout();
  });
  return node;
}
