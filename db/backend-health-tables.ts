/**
 * The backend_health table: each backend's health as the reconciler last reported it. The
 * reconciler is its only writer; `quasar status` reads it.
 */
export type BackendHealthTable = {
  backend_id: string;
  label: string;
  up: boolean;
  last_error: string | null;
  since: Date;
  reported_at: Date;
};

export type BackendHealthTables = { backend_health: BackendHealthTable };
