import { Command } from "commander";
import { registerAuditCommands } from "./commands/audit.js";
import { registerConfigCommands } from "./commands/config.js";
import { registerContractsCommands } from "./commands/contracts.js";
import { registerDevCommand } from "./commands/dev.js";
import { registerKeysCommands } from "./commands/keys.js";
import { registerStartCommands } from "./commands/start.js";
import { registerStatusCommand } from "./commands/status.js";

/** The `quasar` command tree; `signal` is the process's shutdown signal. */
export function buildProgram(signal: AbortSignal): Command {
  const program = new Command("quasar")
    .description(
      "Quasar keeps exactly the right IPFS content pinned, as recorded by storage contracts on Ethereum.",
    )
    .showHelpAfterError()
    .exitOverride();

  registerDevCommand(program, signal);
  registerStartCommands(program, signal);
  registerStatusCommand(program, signal);
  registerContractsCommands(program, signal);
  registerConfigCommands(program);
  registerKeysCommands(program);
  registerAuditCommands(program, signal);
  return program;
}
