// A small Connect-protocol client over fetch (connectrpc.com/docs/protocol): unary calls as JSON, server
// streams as enveloped JSON (1 flag byte, 4-byte big-endian length, the message). No library: the pages are
// served by relais itself, without a build step or a CDN.

const END_STREAM = 0x02;

export class ConnectError extends Error {
  constructor(code, message, status) {
    super(message || code);
    this.code = code; // "unauthenticated", "unavailable", ... as the Connect spec names gRPC codes
    this.status = status;
  }
}

function headers(token, contentType) {
  const h = { "Content-Type": contentType, "Connect-Protocol-Version": "1" };
  if (token) h.Authorization = `Bearer ${token}`;
  return h;
}

async function errorOf(response) {
  let body = {};
  try {
    body = await response.json();
  } catch {
    // not a Connect error body (a proxy's page): the HTTP status speaks
  }
  const code = body.code || codeOfStatus(response.status);
  return new ConnectError(code, body.message || `HTTP ${response.status}`, response.status);
}

function codeOfStatus(status) {
  return { 400: "invalid_argument", 401: "unauthenticated", 403: "permission_denied", 404: "unimplemented",
    408: "deadline_exceeded", 409: "aborted", 412: "failed_precondition", 429: "resource_exhausted",
    499: "canceled", 501: "unimplemented", 502: "unavailable", 503: "unavailable", 504: "unavailable" }[status]
    || "unknown";
}

/** One unary call: the response message as an object; throws ConnectError. */
export async function call(method, request, token) {
  let response;
  try {
    response = await fetch(`/${method}`, {
      method: "POST",
      headers: headers(token, "application/json"),
      body: JSON.stringify(request || {}),
    });
  } catch (e) {
    throw new ConnectError("unavailable", String(e.message || e), 0);
  }
  if (!response.ok) throw await errorOf(response);
  return response.json();
}

function envelope(message) {
  const json = new TextEncoder().encode(JSON.stringify(message || {}));
  const framed = new Uint8Array(5 + json.length);
  new DataView(framed.buffer).setUint32(1, json.length, false);
  framed.set(json, 5);
  return framed;
}

/**
 * A server stream: calls onMessage(object) for each message as it arrives; resolves when the server ends the
 * stream without error, throws ConnectError otherwise (the end-of-stream envelope's error, a dropped
 * connection: "unavailable"). `onOpen` runs once the response headers came (the server holds the stream).
 */
export async function stream(method, request, token, { onMessage, onOpen, signal }) {
  let response;
  try {
    response = await fetch(`/${method}`, {
      method: "POST",
      headers: headers(token, "application/connect+json"),
      body: envelope(request),
      signal,
    });
  } catch (e) {
    if (signal && signal.aborted) throw new ConnectError("canceled", "canceled", 0);
    throw new ConnectError("unavailable", String(e.message || e), 0);
  }
  if (!response.ok) throw await errorOf(response);
  if (onOpen) onOpen();
  const reader = response.body.getReader();
  let buffer = new Uint8Array(0);
  const decoder = new TextDecoder();
  for (;;) {
    let chunk;
    try {
      chunk = await reader.read();
    } catch (e) {
      if (signal && signal.aborted) throw new ConnectError("canceled", "canceled", 0);
      throw new ConnectError("unavailable", `stream dropped: ${e.message || e}`, 0);
    }
    if (chunk.done) throw new ConnectError("unavailable", "stream ended without its end-of-stream message", 0);
    const joined = new Uint8Array(buffer.length + chunk.value.length);
    joined.set(buffer);
    joined.set(chunk.value, buffer.length);
    buffer = joined;
    while (buffer.length >= 5) {
      const flags = buffer[0];
      const length = new DataView(buffer.buffer, buffer.byteOffset + 1, 4).getUint32(0, false);
      if (buffer.length < 5 + length) break;
      const payload = JSON.parse(decoder.decode(buffer.subarray(5, 5 + length)) || "{}");
      buffer = buffer.slice(5 + length);
      if (flags & END_STREAM) {
        if (payload.error) throw new ConnectError(payload.error.code || "unknown", payload.error.message, 200);
        return;
      }
      onMessage(payload);
    }
  }
}

/** A field of a protobuf-JSON object, whether the server wrote it camelCase (the default) or as in the proto. */
export function field(obj, name) {
  if (!obj) return undefined;
  if (name in obj) return obj[name];
  const camel = name.replace(/_([a-z0-9])/g, (_, c) => c.toUpperCase());
  return obj[camel];
}

/** A protobuf-JSON Timestamp (RFC 3339, up to nanoseconds) as milliseconds since the epoch; NaN when unset. */
export function millis(timestamp) {
  if (!timestamp) return NaN;
  if (typeof timestamp === "object") return Number(timestamp.seconds || 0) * 1000 + Number(timestamp.nanos || 0) / 1e6;
  return Date.parse(String(timestamp).replace(/(\.\d{3})\d+/, "$1"));
}

/** Delay before the attempt-th reconnection: doubling from 0.5 s up to 10 s, with jitter so desks do not all
 * come back at the same instant after a restart. */
export function backoff(attempt) {
  const base = Math.min(10000, 500 * 2 ** Math.min(attempt, 5));
  return base / 2 + Math.random() * (base / 2);
}
