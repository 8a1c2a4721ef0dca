import { describe, expect, it } from "vitest";
import { requiredReplicas } from "./decide-replicas.js";

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
