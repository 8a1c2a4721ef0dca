import type { Migration } from "kysely";

/**
 * A migration made for the schema it runs in: kysely qualifies the tables its builders name,
 * not those named in raw SQL (a trigger's table, a function's name).
 */
export type SchemaMigration = (schema: string) => Migration;
