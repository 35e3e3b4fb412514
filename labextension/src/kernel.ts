/**
 * Asking the kernel for a value without a trace in the notebook: a silent execute request with empty
 * code and one `user_expressions` entry. Silent runs get no `[n]`, no history, no output and no
 * pre_run_cell event, so the user's cells never see them.
 */
import { Kernel } from '@jupyterlab/services';

export const STATUS_EXPRESSION =
  "__import__('workbench.notebook.frontend', fromlist=['_']).status_json() " +
  "if 'workbench.notebook' in __import__('sys').modules else 'null'";

export const MLFLOW_EXPRESSION = "__import__('workbench.notebook.frontend', fromlist=['_']).mlflow_ui_json()";

export class KernelExpressionError extends Error {}

/** Evaluate `expression` (which must return JSON text) in the kernel and parse the result. */
export async function evaluateJson(kernel: Kernel.IKernelConnection, expression: string): Promise<unknown> {
  const future = kernel.requestExecute(
    {
      code: '',
      silent: true,
      store_history: false,
      allow_stdin: false,
      stop_on_error: false,
      user_expressions: { value: expression }
    },
    true
  );
  const reply = await future.done;
  const content = reply.content as { status: string; user_expressions?: Record<string, any> };
  const result = content.user_expressions?.value;
  if (content.status !== 'ok' || !result) {
    throw new KernelExpressionError('the kernel did not answer');
  }
  if (result.status !== 'ok') {
    throw new KernelExpressionError(`${result.ename}: ${result.evalue}`);
  }
  const text = result.data?.['text/plain'];
  if (typeof text !== 'string') {
    throw new KernelExpressionError('the kernel answered with no text');
  }
  // text/plain is the repr of a Python str: 'json...' -> json...
  return JSON.parse(pythonString(text));
}

/** Undo Python's repr of a str (JSON text, so only quotes and backslash escapes occur). */
function pythonString(repr: string): string {
  const quote = repr[0];
  if ((quote !== "'" && quote !== '"') || repr[repr.length - 1] !== quote) {
    return repr;
  }
  const body = repr.slice(1, -1);
  return body.replace(/\\(x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|.)/g, (_m, esc: string) => {
    switch (esc[0]) {
      case 'n':
        return '\n';
      case 't':
        return '\t';
      case 'r':
        return '\r';
      case 'x':
      case 'u':
        return String.fromCharCode(parseInt(esc.slice(1), 16));
      case 'U':
        return String.fromCodePoint(parseInt(esc.slice(1), 16));
      default:
        return esc;
    }
  });
}
