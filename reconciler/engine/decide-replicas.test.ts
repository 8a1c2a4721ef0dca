import { describe, expect, it } from "vitest";
import { decideReadiness, requiredReplicas } from "./decide-replicas.js";

describe("requiredReplicas", () => {
  it.each([
    { min: 0, backends: 3, required: 3 },
    { min: 1, backends: 3, required: 1 },
    { min: 2, backends: 3, required: 2 },
    { min: 5, backends: 3, required: 3 },
    { min: 0, backends: 1, required: 1 },
  ])(
    "QUASAR_MIN_REPLICAS $min over $backends backends: $required",
    ({ min, backends, required }) => {
      expect(requiredReplicas(min, backends)).toBe(required);
    },
  );
});

describe("decideReadiness", () => {
  const helia = { label: "helia://.quasar/ipfs", up: true };
  const kuboDown = { label: "ipfs://127.0.0.1:5999", up: false };
  const kuboUp = { label: "ipfs://127.0.0.1:5001", up: true };
  it.each([
    { backends: [helia, kuboUp], required: 2, ready: true, up: 2 },
    { backends: [helia, kuboDown], required: 1, ready: true, up: 1 },
    { backends: [helia, kuboDown], required: 2, ready: false, up: 1 },
    { backends: [kuboDown], required: 1, ready: false, up: 0 },
  ])("$up up of $backends.length, $required required: ready $ready", (row) => {
    const readiness = decideReadiness(row.backends, row.required);
    expect(readiness.ready).toBe(row.ready);
    expect(readiness.up).toBe(row.up);
    expect(readiness.required).toBe(row.required);
    if (row.ready) expect(readiness.reason).toBeUndefined();
    else expect(readiness.reason).toContain(`down: ${kuboDown.label}`);
  });
});

describe("copies kept by a cluster", () => {
  it("counts copies past the number of backends when a backend keeps several", () => {
    expect(requiredReplicas(2, 1, true)).toBe(2);
    expect(requiredReplicas(3, 2, true)).toBe(3);
    // 0 still means one copy on every backend.
    expect(requiredReplicas(0, 2, true)).toBe(2);
  });

  it("is ready with a cluster up, even when fewer backends than copies are up", () => {
    const cluster = { label: "cluster+http://10.0.0.2:9094", up: true, severalCopies: true };
    expect(decideReadiness([cluster], 3).ready).toBe(true);
    expect(decideReadiness([{ ...cluster, up: false }], 3).ready).toBe(false);
  });
});
