/**
 * Asking the kernel for a value without a trace in the notebook: a silent execute request with empty
 * code and one `user_expressions` entry. Silent runs get no `[n]`, no history, no output and no
 * pre_run_cell event, so the user's cells never see them.
 */
import { Kernel } from '@jupyterlab/services';

export const STATUS_EXPRESSION =
  "__import__('workbench.notebook.frontend', fromlist=['_']).status_json() " +
  "if 'workbench.notebook' in __import__('sys').modules else None";

export const MLFLOW_EXPRESSION = "__import__('workbench.notebook.frontend', fromlist=['_']).mlflow_ui_json()";

export class KernelExpressionError extends Error {}

/**
 * Evaluate `expression` in the kernel and return its JSON value. The kernel side returns a JsonReply
 * (workbench/notebook/frontend.py), which IPython shows as `application/json` `{"value": ...}`: real JSON,
 * so nothing here reads a Python repr.
 */
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
  const json = result.data?.['application/json'];
  if (json === null || typeof json !== 'object' || !('value' in json)) {
    return null; // no JSON reply: Workbench is not loaded in this kernel (the expression's else branch)
  }
  return (json as { value: unknown }).value;
}
