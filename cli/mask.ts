/** Masking lives in core/ (the API's dashboard masks the same way); the CLI's imports stay. */
export { MASK, maskSetting, maskUrl } from "@/core/mask.js";
