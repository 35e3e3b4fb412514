/**
 * The only way this extension builds DOM: elements with classes, attributes and *text*.
 *
 * Model and user text is untrusted (DESIGN.md, "Model text is untrusted"): it is only ever set as
 * `textContent` or as an attribute value, never parsed as HTML.
 */

type Child = Node | string | null | undefined | false;

export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  className = '',
  children: Child[] | string = [],
  attrs: Record<string, string> = {}
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  if (className) {
    node.className = className;
  }
  for (const [key, value] of Object.entries(attrs)) {
    node.setAttribute(key, value);
  }
  if (typeof children === 'string') {
    node.textContent = children;
  } else {
    for (const child of children) {
      if (child === null || child === undefined || child === false) {
        continue;
      }
      node.appendChild(typeof child === 'string' ? document.createTextNode(child) : child);
    }
  }
  return node;
}

export function button(
  label: string,
  title: string,
  onClick: (event: MouseEvent) => void,
  className = ''
): HTMLButtonElement {
  const node = el('button', `wb-button ${className}`.trim(), label, {
    type: 'button',
    title,
    'aria-label': title
  });
  node.addEventListener('click', event => {
    event.stopPropagation();
    onClick(event);
  });
  return node;
}

async function writeClipboard(text: string): Promise<void> {
  if (navigator.clipboard && window.isSecureContext) {
    await navigator.clipboard.writeText(text);
    return;
  }
  // plain http on a non-local address: the old way still works from a click
  const area = el('textarea', '', [], { readonly: '', 'aria-hidden': 'true' });
  area.value = text;
  area.style.position = 'fixed';
  area.style.opacity = '0';
  document.body.appendChild(area);
  area.select();
  document.execCommand('copy');
  area.remove();
}

/** A small "Copy" button; says "Copied" for a moment so the click is seen. */
export function copyButton(getText: () => string, what: string): HTMLButtonElement {
  const node = button(
    'Copy',
    `Copy ${what}`,
    () => {
      writeClipboard(getText()).then(
        () => flash(node, 'Copied'),
        () => flash(node, 'Copy failed')
      );
    },
    'wb-copy'
  );
  return node;
}

function flash(node: HTMLElement, text: string): void {
  node.textContent = text;
  window.setTimeout(() => (node.textContent = 'Copy'), 1200);
}
