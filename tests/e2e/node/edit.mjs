// One image edit with the official openai Node SDK (`client.images.edit`), for the Python tests.
//
// Usage: node edit.mjs BASE_URL REQUEST_JSON
// REQUEST_JSON is the edit's parameters, except that `image` is a list of
// {"name", "type", "b64"} files (one file is sent as `image`, several as `image[]`) and
// `mask`, if any, is one such file. Prints one JSON line per stream event, or the whole
// answer, then {"done": true}; or {"error": {...}} when the SDK threw. Exit code 0 in both
// cases: the caller asserts on what was printed.
import OpenAI, { toFile } from "openai";

const [baseURL, requestJson] = process.argv.slice(2);
if (!baseURL || !requestJson) {
  console.error("usage: node edit.mjs BASE_URL REQUEST_JSON");
  process.exit(2);
}

const file = (f) => toFile(Buffer.from(f.b64, "base64"), f.name, { type: f.type });
const print = (value) => process.stdout.write(JSON.stringify(value) + "\n");

const client = new OpenAI({ baseURL, apiKey: "test-key", maxRetries: 0, timeout: 60_000 });
try {
  const { image, mask, ...rest } = JSON.parse(requestJson);
  const images = await Promise.all(image.map(file));
  const params = { ...rest, image: images.length === 1 ? images[0] : images };
  if (mask) params.mask = await file(mask);
  const answer = await client.images.edit(params);
  if (rest.stream) {
    for await (const event of answer) print(event);
  } else {
    print(answer);
  }
  print({ done: true });
} catch (error) {
  print({
    error: {
      class: error?.constructor?.name ?? typeof error,
      status: error?.status ?? null,
      message: String(error?.message ?? error),
      code: error?.code ?? null,
      param: error?.param ?? null,
    },
  });
}
