// The server API as a test calls it: authenticated, JSON in and out, 200 expected.
import assert from "node:assert/strict";

import { httpRequest } from "./raw.mjs";

/** A function `(node, method, path, body?)` calling `node`'s server API with `apiKey`. */
export function apiCaller(apiKey) {
  return async function call(node, method, path, body) {
    const res = await httpRequest(`${node.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${apiKey}`, ...(body ? { "content-type": "application/json" } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    assert.equal(res.status, 200, `${method} ${path}: ${res.body}`);
    return JSON.parse(res.body);
  };
}
