/**
 * The trace bundle (docs/trace-schema.md), as this renderer understands it.
 *
 * The payload comes from a notebook file, which anyone may have written: nothing here trusts its
 * shape. `parseBundle` checks the version and coerces every field it reads, so later code can rely on
 * the types below.
 */

export const MIME_TYPE = 'application/vnd.workbench.trace+json';
/** The schema version this renderer was built for. */
export const SCHEMA_VERSION = 1;

export type Status = 'OK' | 'ERROR' | 'IN_PROGRESS';

export interface ISpanError {
  type: string;
  message: unknown; // a string or a truncated-string object
}

export interface ISpan {
  id: string;
  parentId: string | null;
  name: string;
  kind: string;
  startMs: number;
  durationMs: number | null;
  status: Status;
  error: ISpanError | null;
  inputs: unknown;
  outputs: unknown;
  attributes: Record<string, unknown>;
  events: unknown; // not in version 1; shown when a later version adds it
}

export interface ITotals {
  spans: number;
  errors: number;
  llmCalls: number;
  /** of those, calls that got no answer (absent in older payloads: 0) */
  llmFailed: number;
  promptTokens: number;
  completionTokens: number;
  costUsd: number | null;
}

export interface ILimits {
  textChars: number | null;
  payloadsOmitted: boolean;
  spansOmitted: number;
  reduced: boolean;
}

export interface ITrace {
  version: number;
  traceId: string;
  name: string;
  status: Status;
  startTimeMs: number | null;
  durationMs: number;
  tags: Record<string, unknown>;
  lineage: Record<string, unknown>;
  totals: ITotals | null;
  limits: ILimits;
  spans: ISpan[];
}

export type ParseResult = { trace: ITrace } | { reason: string };

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

const num = (value: unknown): number | null =>
  typeof value === 'number' && Number.isFinite(value) ? value : null;

const str = (value: unknown, fallback = ''): string => (typeof value === 'string' ? value : fallback);

function status(value: unknown): Status {
  return value === 'ERROR' || value === 'IN_PROGRESS' ? value : 'OK';
}

function parseSpan(raw: unknown): ISpan | null {
  if (!isObject(raw) || typeof raw.id !== 'string') {
    return null;
  }
  const error = isObject(raw.error)
    ? { type: str(raw.error.type, 'Error'), message: raw.error.message ?? '' }
    : null;
  const spanStatus = status(raw.status);
  return {
    id: raw.id,
    parentId: typeof raw.parent_id === 'string' ? raw.parent_id : null,
    name: str(raw.name, '(unnamed)'),
    kind: typeof raw.kind === 'string' ? raw.kind.toLowerCase() : 'unknown',
    startMs: Math.max(0, num(raw.start_ms) ?? 0),
    durationMs: num(raw.duration_ms),
    status: spanStatus,
    error: error ?? (spanStatus === 'ERROR' ? { type: 'Error', message: '' } : null),
    inputs: raw.inputs ?? null,
    outputs: raw.outputs ?? null,
    attributes: isObject(raw.attributes) ? raw.attributes : {},
    events: raw.events ?? null
  };
}

function parseTotals(raw: unknown): ITotals | null {
  if (!isObject(raw)) {
    return null;
  }
  return {
    spans: num(raw.spans) ?? 0,
    errors: num(raw.errors) ?? 0,
    llmCalls: num(raw.llm_calls) ?? 0,
    llmFailed: num(raw.llm_failed) ?? 0,
    promptTokens: num(raw.prompt_tokens) ?? 0,
    completionTokens: num(raw.completion_tokens) ?? 0,
    costUsd: num(raw.cost_usd)
  };
}

/**
 * Version 1 renders; a higher version renders what it understands (fields are only added within a
 * version family) and is given up on only when the parts this renderer needs are not there.
 */
export function parseBundle(data: unknown): ParseResult {
  if (!isObject(data)) {
    return { reason: 'the trace payload is not a JSON object' };
  }
  const version = data.version;
  if (typeof version !== 'number' || !Number.isInteger(version) || version < 1) {
    return { reason: `unknown trace schema version ${JSON.stringify(version)}` };
  }
  if (!Array.isArray(data.spans)) {
    return {
      reason: `trace schema version ${version} has no span list this extension can read (it reads version ${SCHEMA_VERSION}); upgrade llmops-workbench`
    };
  }
  const spans: ISpan[] = [];
  for (const raw of data.spans) {
    const span = parseSpan(raw);
    if (span === null) {
      return {
        reason: `a span of this trace (schema version ${version}) has no id; this extension reads version ${SCHEMA_VERSION}`
      };
    }
    spans.push(span);
  }
  const limits = isObject(data.limits) ? data.limits : {};
  const latestEnd = spans.reduce((end, s) => Math.max(end, s.startMs + (s.durationMs ?? 0)), 0);
  return {
    trace: {
      version,
      traceId: str(data.trace_id),
      name: str(data.name, spans[0]?.name ?? 'trace'),
      status: status(data.status),
      startTimeMs: num(data.start_time_ms),
      durationMs: Math.max(num(data.duration_ms) ?? 0, latestEnd),
      tags: isObject(data.tags) ? data.tags : {},
      lineage: isObject(data.lineage) ? data.lineage : {},
      totals: parseTotals(data.totals),
      limits: {
        textChars: num(limits.text_chars),
        payloadsOmitted: limits.payloads_omitted === true,
        spansOmitted: num(limits.spans_omitted) ?? 0,
        reduced: limits.reduced === true
      },
      spans
    }
  };
}

/** `{"__truncated__": true, "preview": ..., "length": N}`: a long string cut by the producer. */
export interface ITruncated {
  preview: string;
  length: number;
}

export function asTruncated(value: unknown): ITruncated | null {
  if (isObject(value) && value.__truncated__ === true && typeof value.preview === 'string') {
    return { preview: value.preview, length: num(value.length) ?? value.preview.length };
  }
  return null;
}

export { isObject, num };
