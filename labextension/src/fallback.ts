/**
 * A payload this extension cannot read (a much newer schema, or a broken file): show the bundle's own
 * `text/html` fallback as JupyterLab shows any untrusted HTML (sanitized), or its text, with the reason.
 */
import { renderHTML } from '@jupyterlab/rendermime';
import { IRenderMime } from '@jupyterlab/rendermime-interfaces';
import { el } from './dom';

export async function renderFallback(
  host: HTMLElement,
  model: IRenderMime.IMimeModel,
  reason: string,
  options: IRenderMime.IRendererOptions
): Promise<void> {
  host.appendChild(
    el('div', 'wb-note wb-fallback-note', `Workbench trace view: ${reason}. Showing the plain view.`)
  );
  const html = model.data['text/html'];
  const text = model.data['text/plain'];
  if (typeof html === 'string' && options.sanitizer) {
    const box = el('div', 'wb-fallback');
    host.appendChild(box);
    await renderHTML({
      host: box,
      source: html,
      trusted: false, // always sanitized, whatever the notebook's trust
      sanitizer: options.sanitizer,
      resolver: options.resolver,
      linkHandler: options.linkHandler,
      latexTypesetter: null,
      shouldTypeset: false
    });
  } else {
    host.appendChild(el('pre', 'wb-fallback', typeof text === 'string' ? text : ''));
  }
}
