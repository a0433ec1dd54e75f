// Static checks of README.md and docs/: the Node.js version README asks for is the one the
// demo's build needs, every relative link leads to a file (and a heading, when it names one),
// and README stays short enough to read, with the rest in docs/.
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, it } from "node:test";

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
const readmePath = path.join(repoRoot, "README.md");
const docsDir = path.join(repoRoot, "docs");

/** README's size limit: the quick start, the contract, the configuration, and links. */
const README_MAX_BYTES = 15_000;

/** The screenshot README shows; the browser suite writes it from the live page. */
const GENERATED_SCREENSHOT = "docs/images/demo.png";

const read = (file) => readFileSync(file, "utf8");

/** README.md and every docs/*.md, as paths from the repository root. */
function markdownFiles() {
  const docs = readdirSync(docsDir)
    .filter((name) => name.endsWith(".md"))
    .map((name) => path.join("docs", name));
  return ["README.md", ...docs.sort()];
}

/** `text` without fenced code blocks and inline code, so examples are not read as links. */
function proseOf(text) {
  return text.replace(/^(```|~~~)[^\n]*\n[\s\S]*?^\1[^\n]*$/gm, "").replace(/`[^`\n]*`/g, "");
}

/** Targets of inline links and images, `[text](target)`, and of `[label]: target` lines. */
function linkTargets(text) {
  const prose = proseOf(text);
  const inline = [...prose.matchAll(/!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)].map((m) => m[1]);
  const defined = [...prose.matchAll(/^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)/gm)].map((m) => m[1]);
  return [...inline, ...defined];
}

const isExternal = (target) => /^[a-z][a-z0-9+.-]*:/i.test(target) || target.startsWith("//");

/** The anchors GitHub gives the headings of a Markdown file. */
function anchorsOf(text) {
  const seen = new Map();
  const anchors = new Set();
  const withoutCode = text.replace(/^(```|~~~)[^\n]*\n[\s\S]*?^\1[^\n]*$/gm, "");
  for (const [, heading] of withoutCode.matchAll(/^#{1,6}\s+(.+?)\s*#*\s*$/gm)) {
    const base = heading
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, "")
      .replace(/\s/g, "-");
    const count = seen.get(base) ?? 0;
    seen.set(base, count + 1);
    anchors.add(count === 0 ? base : `${base}-${count}`);
  }
  return anchors;
}

/** Whether a file of the browser suite names `relPath`, in one string or as path segments. */
function browserSuiteWrites(relPath) {
  const segments = relPath.split("/").map((s) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"));
  const mention = new RegExp(segments.join(`["'\\s,/\\\\]+`));
  const dir = path.join(repoRoot, "tests", "browser");
  const files = readdirSync(dir, { recursive: true })
    .map(String)
    .filter((name) => /\.(m?js|ts)$/.test(name) && !name.includes("node_modules"));
  return files.some((name) => mention.test(read(path.join(dir, name))));
}

/** What is wrong with each relative link of `file` (a path from the repository root). */
function brokenLinks(file) {
  const problems = [];
  const text = read(path.join(repoRoot, file));
  for (const target of linkTargets(text)) {
    if (isExternal(target)) continue;
    const [rawPath, fragment] = target.split("#", 2);
    const linkedPath = decodeURIComponent(rawPath);
    const resolved = linkedPath ? path.resolve(repoRoot, path.dirname(file), linkedPath) : path.join(repoRoot, file);
    const fromRoot = path.relative(repoRoot, resolved).split(path.sep).join("/");
    if (fromRoot.startsWith("..")) {
      problems.push(`${file}: ${target} leaves the repository`);
      continue;
    }
    if (!existsSync(resolved)) {
      if (fromRoot === GENERATED_SCREENSHOT && browserSuiteWrites(GENERATED_SCREENSHOT)) continue;
      problems.push(`${file}: ${target} points at ${fromRoot}, which does not exist`);
      continue;
    }
    if (fragment && resolved.endsWith(".md") && !anchorsOf(read(resolved)).has(fragment)) {
      problems.push(`${file}: ${target} names no heading of ${fromRoot}`);
    }
  }
  return problems;
}

/** Every `major.minor` in a semver range such as `>=20.19` or `^20.19.0 || >=22.12.0`. */
function versionsIn(range) {
  return [...range.matchAll(/(\d+)\.(\d+)/g)].map((m) => [Number(m[1]), Number(m[2])]);
}

describe("README and docs/", () => {
  it("ask for the Node.js version the demo's build needs", () => {
    const pkg = JSON.parse(read(path.join(repoRoot, "client-demo", "package.json")));
    const range = pkg.engines?.node;
    assert.ok(range, "client-demo/package.json has no engines.node");
    const [minimum] = versionsIn(range).sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    assert.ok(minimum, `no major.minor version in engines.node ${JSON.stringify(range)}`);

    const stated = [...read(readmePath).matchAll(/Node\.js\s*(?:≥|>=)\s*(\d+)(?:\.(\d+))?/g)];
    assert.ok(stated.length > 0, 'README.md states no "Node.js ≥ X.Y"');
    for (const [text, major, minor] of stated) {
      assert.deepEqual(
        [Number(major), minor === undefined ? null : Number(minor)],
        minimum,
        `README.md says "${text}", client-demo/package.json needs ${range}`,
      );
    }
  });

  it("link only to files that exist", () => {
    const files = markdownFiles();
    assert.ok(files.length > 1, "docs/ has no Markdown page");
    assert.deepEqual(files.flatMap(brokenLinks), []);
  });

  it(`keep README.md under ${README_MAX_BYTES} bytes`, () => {
    const size = statSync(readmePath).size;
    assert.ok(size < README_MAX_BYTES, `README.md is ${size} bytes; move a topic to docs/`);
  });
});
