/** Numbers as people read them in a trace: latency, tokens, dollars. */

export function formatMs(ms: number | null): string {
  if (ms === null) {
    return 'running';
  }
  if (ms < 1) {
    return `${ms.toFixed(2)} ms`;
  }
  if (ms < 1000) {
    return `${Math.round(ms)} ms`;
  }
  if (ms < 60000) {
    return `${(ms / 1000).toFixed(2)} s`;
  }
  return `${Math.floor(ms / 60000)} min ${Math.round((ms % 60000) / 1000)} s`;
}

export function formatTokens(tokens: number): string {
  if (!tokens) {
    return '';
  }
  return tokens < 10000 ? `${tokens}` : `${(tokens / 1000).toFixed(1)}k`;
}

/** $1.23 for dollars, $0.000038 for fractions of a cent (the same rule as the Python side). */
export function formatUsd(usd: number | null): string {
  if (usd === null) {
    return '';
  }
  if (usd === 0 || Math.abs(usd) >= 0.01) {
    return `$${usd.toFixed(2)}`;
  }
  return '$' + usd.toFixed(8).replace(/0+$/, '');
}

export function formatCount(n: number, one: string, many = `${one}s`): string {
  return `${n.toLocaleString('en-US')} ${n === 1 ? one : many}`;
}
