import { pino } from "pino";
import { describe, expect, it } from "vitest";
import {
  chooseLogFormat,
  parsePinoLine,
  prefixRenderer,
  prettyRenderer,
  useColor,
} from "./log-format.js";

/** One real pino line, as a part writes it. */
function pinoLine(write: (logger: pino.Logger) => void): string {
  const lines: string[] = [];
  const logger = pino(
    { name: "quasar-api", level: "trace" },
    { write: (text: string) => lines.push(text.trimEnd()) },
  );
  write(logger);
  return lines[0] as string;
}

const ESC = "\x1b[";

describe("pretty log lines", () => {
  it("renders a pino line as part │ time LEVEL msg key=value, one line", () => {
    const line = pinoLine((logger) =>
      logger.info({ msg: "upload stored", cid: "bafy123", bytes: 1024, backend: "ipfs://a b" }),
    );
    const text = prettyRenderer(10, false)("api", line);
    expect(text).toMatch(
      /^api {8}│ \d\d:\d\d:\d\d\.\d{3} INFO {2}upload stored cid=bafy123 bytes=1024 backend="ipfs:\/\/a b"$/,
    );
    // pid, hostname, name and the raw time are noise for a person.
    expect(text).not.toMatch(/pid=|hostname=|name=|time=/);
    expect(text).not.toContain(ESC);
  });

  it("keeps nested fields on the line as JSON and never breaks it", () => {
    const line = pinoLine((logger) =>
      logger.warn({ msg: "backend down", err: "connect refused\nretrying", ctx: { a: 1 } }),
    );
    const text = prettyRenderer(10, false)("reconciler", line);
    expect(text.split("\n")).toHaveLength(1);
    expect(text).toContain('WARN  backend down err="connect refused\\nretrying" ctx={"a":1}');
  });

  it("colours the part and the level on a terminal", () => {
    const line = pinoLine((logger) => logger.error({ msg: "pin failed" }));
    const text = prettyRenderer(10, true)("reconciler", line);
    expect(text).toContain(`${ESC}32mreconciler${ESC}0m`);
    expect(text).toContain(`${ESC}31mERROR${ESC}0m`);
  });

  it("leaves lines that are not pino JSON as they are, behind the part", () => {
    const render = prettyRenderer(7, false);
    expect(render("indexer", "12:00:01 INFO  Indexed 3 events")).toBe(
      "indexer │ 12:00:01 INFO  Indexed 3 events",
    );
    expect(render("indexer", '{"not":"pino"}')).toBe('indexer │ {"not":"pino"}');
    expect(parsePinoLine("{broken")).toBeUndefined();
  });

  it("json keeps each raw line behind its prefix", () => {
    const line = pinoLine((logger) => logger.info({ msg: "x" }));
    expect(prefixRenderer(10)("api", line)).toBe(`api        │ ${line}`);
  });
});

describe("format and colour choice", () => {
  it("--json and --pretty win over the command's default", () => {
    expect(chooseLogFormat({}, "pretty")).toBe("pretty");
    expect(chooseLogFormat({ json: true }, "pretty")).toBe("json");
    expect(chooseLogFormat({ pretty: true }, "json")).toBe("pretty");
  });

  it("colours a terminal unless NO_COLOR is set", () => {
    expect(useColor({ isTTY: true }, {})).toBe(true);
    expect(useColor({ isTTY: false }, {})).toBe(false);
    expect(useColor({ isTTY: true }, { NO_COLOR: "1" })).toBe(false);
    expect(useColor({ isTTY: false }, { FORCE_COLOR: "1" })).toBe(true);
  });
});
