/** The MIME renderer extension: registered through `jupyterlab.mimeExtension` in package.json. */
import { IRenderMime } from '@jupyterlab/rendermime-interfaces';
import { MIME_TYPE } from './schema';
import { TraceRenderer } from './view';

export const rendererFactory: IRenderMime.IRendererFactory = {
  safe: true, // payload text is only ever set as textContent, so untrusted notebooks render too
  mimeTypes: [MIME_TYPE],
  defaultRank: 0, // ahead of the bundle's text/html fallback
  createRenderer: options => new TraceRenderer(options)
};

const extension: IRenderMime.IExtension = {
  id: 'llmops-workbench:trace-view',
  rendererFactory,
  rank: 0,
  dataType: 'json'
};

export default extension;
