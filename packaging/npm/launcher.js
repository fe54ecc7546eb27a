#!/usr/bin/env node
// Starts the comfy-mcp binary that the platform package for this machine
// carries (installed by npm as one of this package's optionalDependencies,
// the others being skipped for their "os"/"cpu"), with the same arguments,
// environment and standard streams, and ends as it ends: same exit code,
// or the same signal. Signals sent to this process are passed on, so an
// MCP client that stops the server stops the binary.
"use strict";

const { spawn } = require("node:child_process");
const pkg = require("../package.json");

const platform = `${process.platform}-${process.arch}`;
const name = `${pkg.name}-${platform}`;
const exe = process.platform === "win32" ? "comfy-mcp.exe" : "comfy-mcp";

if (!Object.prototype.hasOwnProperty.call(pkg.optionalDependencies || {}, name)) {
  const known = Object.keys(pkg.optionalDependencies || {}).map((p) => p.slice(pkg.name.length + 1));
  console.error(`comfy-mcp: no prebuilt binary for ${platform} (built for: ${known.join(", ")}); ` +
    "install from source with cargo instead (see the README)");
  process.exit(1);
}

let binary;
try {
  binary = require.resolve(`${name}/bin/${exe}`);
} catch (e) {
  console.error(`comfy-mcp: the package ${name} is not installed next to ${pkg.name} ` +
    "(were optional dependencies turned off, e.g. --omit=optional or --no-optional?)");
  process.exit(1);
}

const child = spawn(binary, process.argv.slice(2), { stdio: "inherit" });
const forwarded = process.platform === "win32" ? ["SIGINT", "SIGTERM"] : ["SIGINT", "SIGTERM", "SIGHUP"];
for (const signal of forwarded) {
  process.on(signal, () => child.kill(signal));
}
child.on("error", (e) => {
  console.error(`comfy-mcp: cannot start ${binary}: ${e.message}`);
  process.exit(1);
});
child.on("exit", (code, signal) => {
  if (signal) {
    // End the same way: drop our handler, then take the signal ourselves.
    process.removeAllListeners(signal);
    process.kill(process.pid, signal);
  } else {
    process.exit(code === null ? 1 : code);
  }
});
