import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { bearerToken, createAdminGuard, createApiKeyring, keyIdOf } from "@/api/auth.js";
import { readLimited } from "@/api/body.js";
import {
  InvalidMultipartError,
  PayloadTooLargeError,
  UnsupportedMediaTypeError,
} from "@/api/errors.js";
import { multipartBoundary, parseMultipart } from "@/api/multipart.js";
import { createRateLimiter } from "@/api/rate-limit.js";
import { formDataBody } from "./api-fixture.js";

async function* chunked(bytes: Uint8Array, sizes: number[]): AsyncGenerator<Uint8Array> {
  let offset = 0;
  let i = 0;
  while (offset < bytes.length) {
    const size = Math.max(1, sizes[i++ % Math.max(1, sizes.length)] ?? bytes.length);
    yield bytes.subarray(offset, offset + size);
    offset += size;
  }
}

async function collect(source: AsyncIterable<Uint8Array>, boundary: string) {
  const parts: { name: string; filename?: string; data: string }[] = [];
  for await (const part of parseMultipart(source, boundary)) {
    const chunks: Buffer[] = [];
    for await (const chunk of part.body) chunks.push(Buffer.from(chunk));
    parts.push({
      name: part.name,
      filename: part.filename,
      data: Buffer.concat(chunks).toString("latin1"),
    });
  }
  return parts;
}

describe("multipart parser", () => {
  it("parses what the platform's FormData sends, however the bytes are split", async () => {
    const payload = new Uint8Array(5000).map((_, i) => (i * 7) % 256);
    const { body, contentType } = await formDataBody({
      note: "hello",
      entry: new File([payload], "a.bin"),
    });
    const boundary = multipartBoundary(contentType);
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.integer({ min: 1, max: 300 }), { minLength: 1, maxLength: 20 }),
        async (sizes) => {
          const parts = await collect(chunked(body, sizes), boundary);
          expect(parts.map((p) => p.name)).toEqual(["note", "entry"]);
          expect(parts[0]?.data).toBe("hello");
          expect(parts[1]?.filename).toBe("a.bin");
          expect(Buffer.from(parts[1]?.data ?? "", "latin1").equals(Buffer.from(payload))).toBe(
            true,
          );
        },
      ),
      { numRuns: 60 },
    );
  });

  it("keeps bytes that look like a partial boundary inside the content", async () => {
    const boundary = "XyZ";
    const tricky = "a\r\n--XyZ-not\r\n--Xy\r\n-b";
    // "\r\n--XyZ" inside the content would end the part; everything else must survive.
    const content = tricky.replace("\r\n--XyZ-not", "\r\n--XyQ-not");
    const body = Buffer.from(
      `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="x"\r\n\r\n${content}\r\n--${boundary}--\r\n`,
      "latin1",
    );
    for (const size of [1, 2, 3, 5, 7, 1000]) {
      const parts = await collect(chunked(body, [size]), boundary);
      expect(parts).toHaveLength(1);
      expect(parts[0]?.data).toBe(content);
    }
  });

  it("skips an unread part when the next one is requested", async () => {
    const { body, contentType } = await formDataBody({ a: "first", b: "second" });
    const names: string[] = [];
    let second = "";
    for await (const part of parseMultipart(chunked(body, [3]), multipartBoundary(contentType))) {
      names.push(part.name);
      if (part.name === "b")
        for await (const chunk of part.body) second += Buffer.from(chunk).toString();
    }
    expect(names).toEqual(["a", "b"]);
    expect(second).toBe("second");
  });

  it.each([
    ["empty body", ""],
    ["no boundary at all", "just some text that is long enough"],
    ["truncated in headers", '--B\r\nContent-Disposition: form-data; name="file"'],
    ["truncated in content", '--B\r\nContent-Disposition: form-data; name="file"\r\n\r\nabc'],
    ["no disposition", "--B\r\nContent-Type: text/plain\r\n\r\nabc\r\n--B--"],
    ["no field name", "--B\r\nContent-Disposition: form-data\r\n\r\nabc\r\n--B--"],
    ["bad header line", "--B\r\nnot a header\r\n\r\nabc\r\n--B--"],
    ["garbage after boundary", "--Bxx"],
  ])("refuses a malformed body: %s", async (_label, text) => {
    await expect(collect(chunked(Buffer.from(text), [4]), "B")).rejects.toBeInstanceOf(
      InvalidMultipartError,
    );
  });

  it("refuses headers that never end and too many parts", async () => {
    const longHeaders = `--B\r\nContent-Disposition: form-data; name="f"\r\nX: ${"a".repeat(20_000)}\r\n\r\nx\r\n--B--`;
    await expect(collect(chunked(Buffer.from(longHeaders), [1000]), "B")).rejects.toThrow(/exceed/);
    const many = `${Array.from({ length: 70 }, (_, i) => `--B\r\nContent-Disposition: form-data; name="f${i}"\r\n\r\nx\r\n`).join("")}--B--`;
    await expect(collect(chunked(Buffer.from(many), [1000]), "B")).rejects.toThrow(
      /more than 64 parts/,
    );
  });

  it("keeps folders and UTF-8 in file names, and streams parts that have no filename", async () => {
    const boundary = "K";
    const body = Buffer.from(
      `--K\r\nContent-Disposition: form-data; name="file"; filename="dir%2Fa.txt"\r\n\r\na\r\n` +
        `--K\r\nContent-Disposition: form-data; name="file-1"; filename="dir/ünï.txt"\r\n\r\nb\r\n` +
        `--K\r\nContent-Disposition: form-data; name="entry"\r\nContent-Type: application/octet-stream\r\n\r\n${"c".repeat(300_000)}\r\n--K--\r\n`,
      "utf8",
    );
    const seen: { name: string; filename?: string; contentType?: string; chunks: number }[] = [];
    for await (const part of parseMultipart(chunked(body, [16 * 1024]), boundary)) {
      let chunks = 0;
      for await (const _ of part.body) chunks += 1;
      seen.push({
        name: part.name,
        filename: part.filename,
        contentType: part.contentType,
        chunks,
      });
    }
    expect(seen.map(({ name, filename }) => [name, filename])).toEqual([
      ["file", "dir%2Fa.txt"],
      ["file-1", "dir/ünï.txt"],
      ["entry", undefined],
    ]);
    expect(seen[2]?.contentType).toBe("application/octet-stream");
    // 300 kB in 16 kB pieces: the unnamed part arrives as a stream, not one buffered field.
    expect(seen[2]?.chunks).toBeGreaterThan(10);
  });

  it("reads the source only as fast as the consumer drains the part", async () => {
    const chunk = new Uint8Array(64 * 1024).fill(0x61);
    const head = Buffer.from(
      '--B\r\nContent-Disposition: form-data; name="entry"; filename="big"\r\n\r\n',
    );
    let pulled = 0;
    const source = (async function* () {
      yield head;
      for (let i = 0; i < 1600; i++) {
        pulled += 1;
        yield chunk; // 100 MiB in all
      }
      yield Buffer.from("\r\n--B--\r\n");
    })();
    const parts = parseMultipart(source, "B");
    const first = await parts.next();
    if (first.done) throw new Error("no part");
    const reader = first.value.body[Symbol.asyncIterator]();
    const firstChunk = await reader.next();
    await new Promise((resolve) => setTimeout(resolve, 50));
    // A stalled consumer holds the parser: a few chunks of read-ahead, never the whole body.
    expect(pulled).toBeLessThan(8);
    let bytes = firstChunk.value?.byteLength ?? 0;
    for (let next = await reader.next(); !next.done; next = await reader.next())
      bytes += next.value.byteLength;
    expect(pulled).toBe(1600);
    expect(bytes).toBe(1600 * chunk.byteLength);
    expect((await parts.next()).done).toBe(true);
  });

  it("hands the source's own error to the part's reader", async () => {
    const source = (async function* () {
      yield Buffer.from(
        '--B\r\nContent-Disposition: form-data; name="entry"; filename="a"\r\n\r\nsome bytes',
      );
      throw new PayloadTooLargeError(10);
    })();
    await expect(collect(source, "B")).rejects.toBeInstanceOf(PayloadTooLargeError);
  });

  it("refuses a part whose headers run into the next boundary", async () => {
    const text =
      '--B\r\nContent-Disposition: form-data; name="a"\r\n--B\r\nContent-Disposition: form-data; name="b"\r\n\r\nx\r\n--B--';
    for (const size of [1, 7, 1000]) {
      await expect(collect(chunked(Buffer.from(text), [size]), "B")).rejects.toBeInstanceOf(
        InvalidMultipartError,
      );
    }
    await expect(collect(chunked(Buffer.from("--B--\r\n"), [2]), "B")).resolves.toEqual([]);
  });

  it("reads the boundary from Content-Type, and refuses other types", () => {
    expect(multipartBoundary('multipart/form-data; boundary="a b"')).toBe("a b");
    expect(multipartBoundary("Multipart/Form-Data;boundary=----x")).toBe("----x");
    expect(() => multipartBoundary("application/json")).toThrow(UnsupportedMediaTypeError);
    expect(() => multipartBoundary(undefined)).toThrow(UnsupportedMediaTypeError);
    expect(() => multipartBoundary("multipart/form-data")).toThrow(InvalidMultipartError);
    expect(() => multipartBoundary(`multipart/form-data; boundary=${"x".repeat(71)}`)).toThrow(
      InvalidMultipartError,
    );
  });

  it("never throws anything but its own errors on random input", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ maxLength: 400 }),
        fc.integer({ min: 1, max: 50 }),
        async (bytes, size) => {
          const prefixed = Buffer.concat([Buffer.from("--B\r\n"), Buffer.from(bytes)]);
          try {
            await collect(chunked(prefixed, [size]), "B");
          } catch (error) {
            expect(error).toBeInstanceOf(InvalidMultipartError);
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe("body limit", () => {
  it("stops reading as soon as the limit is crossed", async () => {
    let pulled = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        pulled += 1;
        controller.enqueue(new Uint8Array(1000));
        if (pulled > 1000) controller.close();
      },
    });
    const request = new Request("http://local/", {
      method: "POST",
      body: stream,
      duplex: "half",
    } as RequestInit);
    let seen = 0;
    await expect(
      (async () => {
        for await (const chunk of readLimited(request, 10_500)) seen += chunk.byteLength;
      })(),
    ).rejects.toBeInstanceOf(PayloadTooLargeError);
    expect(seen).toBe(10_000);
    // A few chunks of read-ahead at most, never the whole 1 MB body.
    expect(pulled).toBeLessThan(20);
  });

  it("refuses a declared Content-Length over the limit before reading", async () => {
    const request = new Request("http://local/", {
      method: "POST",
      body: "x".repeat(100),
      headers: { "content-length": "100" },
    });
    await expect(readLimited(request, 10).next()).rejects.toBeInstanceOf(PayloadTooLargeError);
  });
});

describe("rate limiter", () => {
  it("allows `limit` requests per window, then says when to retry", () => {
    const limiter = createRateLimiter({ limit: 3, windowMs: 60_000 });
    const t0 = 1_000_000;
    expect([1, 2, 3].map(() => limiter.take("a", t0).allowed)).toEqual([true, true, true]);
    const refused = limiter.take("a", t0 + 15_000);
    expect(refused).toEqual({ allowed: false, retryAfterSeconds: 45 });
    expect(limiter.take("b", t0).allowed).toBe(true);
    expect(limiter.take("a", t0 + 60_000).allowed).toBe(true);
  });

  it("keeps memory bounded however many clients appear", () => {
    const limiter = createRateLimiter({ limit: 1, windowMs: 60_000, maxClients: 100 });
    for (let i = 0; i < 10_000; i++) limiter.take(`client-${i}`, 1000 + i);
    expect(limiter.size).toBeLessThanOrEqual(100);
  });

  it("is off when the limit is 0", () => {
    const limiter = createRateLimiter({ limit: 0, windowMs: 1000 });
    for (let i = 0; i < 1000; i++) expect(limiter.take("a", 0).allowed).toBe(true);
    expect(limiter.size).toBe(0);
  });
});

describe("keys", () => {
  it("identifies keys by a short hash, never the key, and refuses others", async () => {
    const keyring = createApiKeyring(["secret-one", "secret-two"]);
    const caller = await keyring.authenticate("Bearer secret-two");
    expect(caller.keyId).toBe(keyIdOf("secret-two"));
    expect(caller.keyId).not.toContain("secret");
    await expect(keyring.authenticate("Bearer secret-three")).rejects.toThrow(
      /not a valid API key/,
    );
    await expect(keyring.authenticate(undefined)).rejects.toThrow(/missing or invalid/);
    await expect(keyring.authenticate("Basic c2VjcmV0LW9uZQ==")).rejects.toThrow(
      /missing or invalid/,
    );
    expect(await createApiKeyring([]).authenticate(undefined)).toEqual({ keyId: "anonymous" });
    await expect(createApiKeyring([]).authenticate(undefined, { always: true })).rejects.toThrow(
      /missing or invalid/,
    );
  });

  it("admin routes are disabled without a token and need the exact token", () => {
    expect(() => createAdminGuard("").check("Bearer x")).toThrow(/disabled/);
    const guard = createAdminGuard("admin-token");
    expect(() => guard.check("Bearer admin-token")).not.toThrow();
    expect(() => guard.check("Bearer admin-token2")).toThrow(/not the admin token/);
    expect(() => guard.check(undefined)).toThrow(/missing/);
    expect(bearerToken("bearer   abc ")).toBe("abc");
  });
});
