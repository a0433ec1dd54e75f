// Static checks of docker/: the Compose file is valid against the Compose specification, the
// image builds with the same commands CI runs (so a green CI means the image builds too), and
// the Dockerfile, the Compose file and nginx.conf agree with each other. CI has no Docker
// engine; tests/js/nginx-cluster.test.mjs runs nginx.conf for real.
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, it } from "node:test";

import { DCLinter } from "dclint";
import { parse as parseYaml } from "yaml";

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
const composePath = path.join(repoRoot, "docker", "docker-compose.yml");
const dockerfilePath = path.join(repoRoot, "docker", "Dockerfile");
const nginxConfPath = path.join(repoRoot, "docker", "nginx.conf");
const runAllPath = path.join(repoRoot, "tests", "run-all.sh");

/** Node socket.io's and iorelay's default pingInterval + pingTimeout, in seconds (README). */
const DEFAULT_HEARTBEAT_S = 25 + 20;

// --- Compose specification -----------------------------------------------------------------

/**
 * What dclint reports about `file` as YAML and against the Compose specification schema it
 * ships (draft-07, from compose-spec). Its style rules are left out: only validity counts here.
 */
function composeSpecProblems(file) {
  const linter = new DCLinter({ rules: {}, quiet: true, debug: false, exclude: [] });
  const results = linter.lintFiles([file], false);
  assert.equal(results.length, 1, `dclint did not lint ${file}`);
  return results[0].messages
    .filter((m) => ["invalid-yaml", "invalid-schema", "unknown-error"].includes(m.rule))
    .map((m) => `${m.rule}: ${m.message}`);
}

/** Writes `text` as docker-compose.yml in a temporary folder and validates it. */
async function composeSpecProblemsOfText(text) {
  const dir = await mkdtemp(path.join(os.tmpdir(), "iorelay-compose-"));
  try {
    const file = path.join(dir, "docker-compose.yml");
    await writeFile(file, text);
    return composeSpecProblems(file);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Replaces `from` (which must occur) by `to` once. */
function mutate(text, from, to) {
  assert.ok(text.includes(from), `the file no longer contains ${JSON.stringify(from)}`);
  return text.replace(from, to);
}

describe("docker/docker-compose.yml", () => {
  it("is valid against the Compose specification", () => {
    assert.deepEqual(composeSpecProblems(composePath), []);
  });

  it("would fail validation if it were broken", async () => {
    const text = await readFile(composePath, "utf8");
    const broken = {
      "an unknown service key": mutate(text, "    restart: unless-stopped\n", "    restart_policy: unless-stopped\n"),
      "an unknown depends_on condition": mutate(text, "condition: service_healthy", "condition: service_ready"),
      "ports given as a string": mutate(text, '    ports:\n      - "3000:3000"', '    ports: "3000:3000"'),
      "invalid YAML": mutate(text, "services:", "services: ["),
    };
    for (const [what, brokenText] of Object.entries(broken)) {
      const problems = await composeSpecProblemsOfText(brokenText);
      assert.ok(problems.length > 0, `a compose file with ${what} passed validation`);
    }
  });
});

// --- Dockerfile build steps versus tests/run-all.sh ------------------------------------------

/** Steps of a Dockerfile RUN that set up the OS, not the project; CI need not run them. */
const OS_SETUP_STEPS = [
  // Packages of the runtime image (curl for HEALTHCHECK).
  /^apt-get update$/,
  /^apt-get install( -\S+)* [a-z0-9.+-]+( [a-z0-9.+-]+)*$/,
  /^rm -rf \/var\/lib\/apt\/lists\/\*$/,
  // The unprivileged user the server runs as.
  /^(useradd|groupadd) /,
];

/** Dockerfile instructions as `{ keyword, args }`, continuation lines joined, comments dropped. */
function dockerInstructions(text) {
  const instructions = [];
  let current = "";
  for (const line of text.split("\n")) {
    if (/^\s*#/.test(line)) continue; // comments and parser directives, also inside a continuation
    const continued = /\\\s*$/.test(line);
    current += ` ${line.replace(/\\\s*$/, "")}`;
    if (continued) continue;
    const trimmed = current.trim();
    current = "";
    if (!trimmed) continue;
    const [, keyword, args] = /^(\S+)\s*(.*)$/.exec(trimmed);
    instructions.push({ keyword: keyword.toUpperCase(), args });
  }
  return instructions;
}

const normalize = (command) => command.trim().replace(/\s+/g, " ");

/** The shell steps of every RUN (split on `&&` and `;`), without RUN's own `--flag=...` options. */
function runSteps(dockerfileText) {
  const steps = [];
  for (const { keyword, args } of dockerInstructions(dockerfileText)) {
    if (keyword !== "RUN") continue;
    let command = args;
    while (/^--\S+\s/.test(command)) command = command.replace(/^--\S+\s+/, "");
    if (command.startsWith("<<")) throw new Error(`heredoc RUN is not supported by this check: ${args}`);
    if (command.startsWith("[")) command = JSON.parse(command).join(" ");
    steps.push(...command.split(/&&|;/).map(normalize).filter(Boolean));
  }
  return steps;
}

/** Every command of a shell script, continuation lines joined, split on `&&` and `;`. */
function scriptCommands(scriptText) {
  return scriptText
    .replace(/\\\n/g, " ")
    .split("\n")
    .filter((line) => !/^\s*#/.test(line))
    .flatMap((line) => line.split(/&&|;/))
    .map((command) => normalize(command).replace(/^(then|do|else) /, ""))
    .filter(Boolean);
}

/** The build steps of `dockerfileText` that the script does not run, spelled exactly so. */
function stepsMissingFromScript(dockerfileText, scriptText) {
  const commands = new Set(scriptCommands(scriptText));
  return runSteps(dockerfileText)
    .filter((step) => !OS_SETUP_STEPS.some((allowed) => allowed.test(step)))
    .filter((step) => !commands.has(step));
}

/** The local crates a Cargo manifest builds from: workspace members and `path` patches. */
function localCrates(manifestText) {
  const crates = new Set();
  const members = /^members\s*=\s*\[([^\]]*)\]/m.exec(manifestText);
  for (const [, member] of (members?.[1] ?? "").matchAll(/"([^"]+)"/g)) crates.add(member);
  const patches = /^\[patch\.[^\]]+\]\s*$([\s\S]*?)(?=^\[|(?![\s\S]))/m.exec(manifestText);
  for (const [, crate] of (patches?.[1] ?? "").matchAll(/path\s*=\s*"([^"]+)"/g)) crates.add(crate);
  crates.delete(".");
  return [...crates].map((crate) => crate.replace(/\/$/, ""));
}

/** The crates of `crates` that no COPY of the Dockerfile's Rust build stage brings in. */
function cratesNotCopied(dockerfileText, crates) {
  const instructions = dockerInstructions(dockerfileText);
  const stageStart = instructions.findLastIndex((i) => i.keyword === "FROM" && /^rust:/.test(i.args));
  const stageEnd = instructions.findIndex((i, index) => index > stageStart && i.keyword === "FROM");
  const sources = instructions
    .slice(stageStart, stageEnd === -1 ? undefined : stageEnd)
    .filter((i) => i.keyword === "COPY" && !i.args.startsWith("--from"))
    .flatMap((i) => i.args.split(/\s+/).slice(0, -1))
    .map((source) => source.replace(/\/$/, ""));
  return crates.filter((crate) => !sources.some((source) => crate === source || crate.startsWith(`${source}/`)));
}

describe("docker/Dockerfile", () => {
  it("builds with commands that tests/run-all.sh runs too", async () => {
    const dockerfile = await readFile(dockerfilePath, "utf8");
    const script = await readFile(runAllPath, "utf8");
    const buildSteps = runSteps(dockerfile).filter((step) => !OS_SETUP_STEPS.some((a) => a.test(step)));
    // The check must look at the real build, not pass on a Dockerfile it failed to read.
    for (const tool of ["npm ci ", "npm run ", "cargo build "]) {
      assert.ok(
        buildSteps.some((step) => step.startsWith(tool)),
        `no "${tool.trim()}" step found in ${JSON.stringify(buildSteps)}`,
      );
    }
    assert.deepEqual(stepsMissingFromScript(dockerfile, script), [], "RUN steps that run-all.sh does not run");
  });

  it("would catch a build step that CI does not run", () => {
    const script = "cargo build --release --locked --bin iorelay\nnpm ci --prefix client-demo\n";
    const dockerfile = [
      "FROM rust:1-slim AS server",
      "RUN --mount=type=cache,target=/usr/local/cargo/registry \\",
      "    cargo build --release --bin iorelay",
      'RUN ["npm", "ci", "--prefix", "client-demo"]',
      "RUN apt-get update && apt-get install -y --no-install-recommends curl && make dist",
    ].join("\n");
    assert.deepEqual(stepsMissingFromScript(dockerfile, script), ["cargo build --release --bin iorelay", "make dist"]);
  });

  it("copies every local crate that Cargo.toml builds from into the server stage", async () => {
    const crates = localCrates(await readFile(path.join(repoRoot, "Cargo.toml"), "utf8"));
    // The check must look at the real manifest, not pass on one it failed to read.
    assert.ok(crates.includes("vendor/engineioxide"), `local crates found: ${JSON.stringify(crates)}`);
    const dockerfile = await readFile(dockerfilePath, "utf8");
    assert.deepEqual(cratesNotCopied(dockerfile, crates), []);
  });

  it("would catch a local crate that the image does not copy", () => {
    const manifest = [
      "[workspace]",
      'members = [".", "vendor/engineioxide"]',
      "[patch.crates-io]",
      'engineioxide = { path = "vendor/engineioxide" }',
      'other = { path = "crates/other" }',
    ].join("\n");
    const dockerfile = ["FROM rust:1-slim AS server", "COPY Cargo.toml Cargo.lock ./", "COPY vendor/ vendor/"].join("\n");
    assert.deepEqual(cratesNotCopied(dockerfile, localCrates(manifest)), ["crates/other"]);
  });

  it("runs the server unprivileged on a slim Debian image, with a health check and IORELAY_* settings", async () => {
    const instructions = dockerInstructions(await readFile(dockerfilePath, "utf8"));
    const finalStage = instructions.slice(instructions.findLastIndex((i) => i.keyword === "FROM"));
    assert.match(finalStage[0].args, /^debian:\w+-slim$/);
    const users = finalStage.filter((i) => i.keyword === "USER").map((i) => i.args);
    assert.ok(users.length > 0 && !["root", "0"].includes(users.at(-1)), `final USER: ${users.at(-1)}`);
    const healthcheck = finalStage.find((i) => i.keyword === "HEALTHCHECK");
    assert.match(healthcheck?.args ?? "", /CMD .*\/healthz/);
    assert.deepEqual(finalStage.filter((i) => i.keyword === "EXPOSE").map((i) => i.args), ["3000"]);

    const env = Object.fromEntries(
      finalStage
        .filter((i) => i.keyword === "ENV")
        .flatMap((i) => [...i.args.matchAll(/(\w+)=(\S+)/g)].map(([, key, value]) => [key, value])),
    );
    assert.deepEqual(Object.keys(env).filter((key) => !key.startsWith("IORELAY_")), []);
    assert.equal(env.IORELAY_HOST, "0.0.0.0");
    assert.equal(env.IORELAY_PORT, "3000");
    // The page is copied to where IORELAY_STATIC_DIR points.
    const copies = finalStage.filter((i) => i.keyword === "COPY").map((i) => i.args.split(/\s+/).at(-1));
    assert.ok(copies.includes(env.IORELAY_STATIC_DIR), `nothing copied to ${env.IORELAY_STATIC_DIR}`);
  });

  it("keeps build outputs and dependencies out of the build context", async () => {
    const ignored = (await readFile(`${dockerfilePath}.dockerignore`, "utf8")).split("\n").map((l) => l.trim());
    for (const pattern of ["**/target", "**/node_modules"]) assert.ok(ignored.includes(pattern), pattern);
  });
});

// --- nginx.conf and Compose agree --------------------------------------------------------------

/** The directives of nginx.conf as `[name, args]` pairs, comments removed (blocks flattened). */
function nginxDirectives(text) {
  return text
    .replace(/#.*$/gm, "")
    .split(/[;{}]/)
    .map(normalize)
    .filter(Boolean)
    .map((statement) => {
      const [name, ...args] = statement.split(" ");
      return [name, args.join(" ")];
    });
}

describe("docker/nginx.conf with docker-compose.yml", () => {
  it("proxies to every iorelay service of the Compose file, sticky and WebSocket-ready", async () => {
    const compose = parseYaml(await readFile(composePath, "utf8"));
    const directives = nginxDirectives(await readFile(nginxConfPath, "utf8"));
    const values = (name) => directives.filter(([n]) => n === name).map(([, args]) => args);

    const iorelayServices = Object.entries(compose.services)
      .filter(([, service]) => service.build?.dockerfile === "docker/Dockerfile")
      .map(([name]) => name);
    assert.equal(iorelayServices.length, 3);
    assert.deepEqual(values("server").filter((s) => s !== ""), iorelayServices.map((name) => `${name}:3000`));
    assert.deepEqual(values("hash"), ["$remote_addr consistent"]);

    for (const name of iorelayServices) {
      assert.equal(compose.services[name].build.context, "..");
      assert.equal(compose.services[name].environment.IORELAY_REDIS_URL, "redis://redis:6379");
      assert.deepEqual(Object.keys(compose.services[name].environment).filter((k) => !k.startsWith("IORELAY_")), []);
    }
    assert.match(compose.services.redis.image, /^redis:7/);
    assert.deepEqual(compose.services.redis.command, ["redis-server", "--save", "", "--appendonly", "no"]);

    assert.deepEqual(values("listen"), ["3000"]);
    assert.deepEqual(compose.services.nginx.ports, ["3000:3000"]);
    assert.ok(compose.services.nginx.volumes.includes("./nginx.conf:/etc/nginx/nginx.conf:ro"));

    // WebSocket through the proxy: HTTP/1.1 and the hop-by-hop upgrade headers passed on.
    assert.deepEqual(values("proxy_http_version"), ["1.1"]);
    assert.ok(values("map").includes("$http_upgrade $connection_upgrade"));
    const headers = values("proxy_set_header");
    for (const header of ["Upgrade $http_upgrade", "Connection $connection_upgrade", "X-Forwarded-For $proxy_add_x_forwarded_for"]) {
      assert.ok(headers.includes(header), `proxy_set_header ${header}`);
    }
    // An idle WebSocket or a held long-poll must outlive Engine.IO's heartbeat.
    const [readTimeout] = values("proxy_read_timeout");
    const seconds = Number(/^(\d+)s?$/.exec(readTimeout ?? "")?.[1]);
    assert.ok(seconds > DEFAULT_HEARTBEAT_S, `proxy_read_timeout ${readTimeout} must exceed ${DEFAULT_HEARTBEAT_S}s`);
  });
});
