// One streaming image generation with the official openai Node SDK, for the Python tests.
//
// Usage: node stream.mjs BASE_URL REQUEST_JSON [CLIENT_OPTIONS_JSON]
// Prints one JSON line per SDK event (image bytes summarised, not echoed), then either
// {"done": true} when the stream ended cleanly or {"error": {...}} when the SDK threw.
// Exit code 0 in both cases: the caller asserts on what was printed.
import OpenAI from "openai";

const [baseURL, requestJson, optionsJson = "{}"] = process.argv.slice(2);
if (!baseURL || !requestJson) {
  console.error("usage: node stream.mjs BASE_URL REQUEST_JSON [CLIENT_OPTIONS_JSON]");
  process.exit(2);
}

// Enough of each format's signature to tell what the base64 holds.
function formatOf(bytes) {
  if (bytes.subarray(0, 4).toString("latin1") === "\x89PNG") return "png";
  if (bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return "jpeg";
  if (bytes.subarray(0, 4).toString() === "RIFF" && bytes.subarray(8, 12).toString() === "WEBP")
    return "webp";
  return "unknown";
}

function summary(event) {
  const { b64_json: b64, ...rest } = event;
  const bytes = Buffer.from(b64 ?? "", "base64");
  return { ...rest, bytes: bytes.length, format: formatOf(bytes) };
}

const print = (value) => process.stdout.write(JSON.stringify(value) + "\n");

// No retries: a test must see the first answer. The SDK's `timeout` (ms) bounds the wait for
// the response headers; a test may lower it with CLIENT_OPTIONS_JSON.
const client = new OpenAI({
  baseURL,
  apiKey: "test-key",
  maxRetries: 0,
  timeout: 60_000,
  ...JSON.parse(optionsJson),
});
try {
  const stream = await client.images.generate({ ...JSON.parse(requestJson), stream: true });
  for await (const event of stream) print(summary(event));
  print({ done: true });
} catch (error) {
  print({
    error: {
      class: error?.constructor?.name ?? typeof error,
      api_error: error instanceof OpenAI.APIError,
      status: error?.status ?? null,
      message: String(error?.message ?? error),
      type: error?.type ?? null,
      code: error?.code ?? null,
      param: error?.param ?? null,
    },
  });
}
