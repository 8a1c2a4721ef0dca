/** Uploads through the API: their rules (decide.ts) and their one writer (record.ts). */
export {
  confirmedPinChange,
  decideUpload,
  failedPinChange,
  optimisticExpiry,
  RECORD_OWNED_REASON,
  UPLOAD_PIN_GRACE_MS,
  UPLOAD_RECORD_OUTCOMES,
  type UploadLedgerRow,
  type UploadPinRef,
  type UploadRecord,
  type UploadRecordOutcome,
} from "./decide.js";
export {
  applyUploadFollowUps,
  latestOptimisticExpiries,
  listOptimisticPins,
  type RecordedUpload,
  type RecordUploadsParams,
  recordUploads,
} from "./record.js";
