import { describe, expect, it } from "vitest";
import { type Backend, hasContent, requireContent } from "./backend.js";
import { MissingBackendRoleError } from "./errors.js";
import { createBackend } from "./index.js";

describe("backend roles", () => {
  it("gives helia and Kubo both roles, under one identity", () => {
    for (const raw of ["helia:///tmp/quasar-roles?offline=true", "ipfs://127.0.0.1:5001"]) {
      const backend = createBackend(raw);
      expect(hasContent(backend)).toBe(true);
      expect(backend.pins.id).toBe(backend.id);
      expect(backend.content?.id).toBe(backend.id);
      expect(backend.pins.label).toBe(backend.label);
      expect(backend.content?.designator).toBe(backend.designator);
    }
  });

  it("refuses a pin-only backend where content is required, naming it and the job", () => {
    // No pin-only kind exists yet (IPFS Cluster, PSA come next): one is made by dropping a
    // real backend's content role, which is exactly what such a kind will look like.
    const full = createBackend("ipfs+https://ipfs.example.com?token=s3cr3t");
    const pinOnly: Backend = { ...full, content: undefined };
    expect(hasContent(pinOnly)).toBe(false);
    expect(requireContent(full, "take uploads")).toBe(full);
    let failure: unknown;
    try {
      requireContent(pinOnly, "take uploads");
    } catch (error) {
      failure = error;
    }
    expect(failure).toBeInstanceOf(MissingBackendRoleError);
    expect((failure as MissingBackendRoleError).shortMessage).toBe(
      "backend ipfs+https://ipfs.example.com?token=*** cannot take uploads: it has no content role",
    );
    expect((failure as Error).message).toContain("helia://");
  });
});
