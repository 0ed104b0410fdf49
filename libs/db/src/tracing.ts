// Database queries as child spans of the call that makes them, so that a slow
// append shows where its time went (its transaction, each statement). Spans
// go to the tracer the process registered with OpenTelemetry (the server's
// telemetry); a query made outside a recorded span (background work, or
// tracing off) costs one check and makes none.
import { context, SpanKind, SpanStatusCode, trace, type Span } from "@opentelemetry/api";
import type { Database, Queryable, QueryResult } from "./database.js";

const tracer = trace.getTracer("annals.db");
/** The statement as recorded: its text, clipped (parameters are never recorded). */
const MAX_STATEMENT = 300;

function recording(): boolean {
  return trace.getSpan(context.active())?.isRecording() === true;
}

async function inSpan<T>(name: string, system: string, statement: string | undefined, work: () => Promise<T>): Promise<T> {
  return tracer.startActiveSpan(
    name,
    { kind: SpanKind.CLIENT, attributes: { "db.system": system, ...(statement ? { "db.query.text": statement.slice(0, MAX_STATEMENT) } : {}) } },
    async (span: Span) => {
      try {
        return await work();
      } catch (error) {
        span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.message : String(error) });
        throw error;
      } finally {
        span.end();
      }
    },
  );
}

function tracedQuery(target: Queryable, system: string): Queryable["query"] {
  return <R>(sql: string, params?: readonly unknown[]): Promise<QueryResult<R>> => {
    if (!recording()) return target.query<R>(sql, params);
    return inSpan(`db.query ${sql.trimStart().split(/\s/, 1)[0]!.toLowerCase()}`, system, sql, () => target.query<R>(sql, params));
  };
}

/** The database with a span per query and per transaction (around its queries). */
export function traced(db: Database): Database {
  const system = db.driver === "postgres" ? "postgresql" : "pglite";
  return {
    ...db,
    query: tracedQuery(db, system),
    transaction<T>(work: (tx: Queryable) => Promise<T>): Promise<T> {
      if (!recording()) return db.transaction(work);
      return inSpan("db.transaction", system, undefined, () => db.transaction((tx) => work({ query: tracedQuery(tx, system) })));
    },
  };
}
