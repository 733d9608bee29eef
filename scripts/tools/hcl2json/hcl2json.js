#!/usr/bin/env node
// Parses Terraform files with HashiCorp's HCL parser (@cdktf/hcl2json).
//
//   node hcl2json.js PATH...   PATH: a .tf file or a directory (searched recursively)
//
// Prints {"<file>": <parsed>, ...} as JSON on stdout (files relative to the
// current directory, sorted). On a syntax error prints `file:line,col: message`
// for every bad file on stderr and exits 1.
"use strict";
const fs = require("fs");
const path = require("path");
const { parse } = require("@cdktf/hcl2json");

function tfFiles(p, out) {
  const st = fs.statSync(p);
  if (st.isDirectory()) {
    for (const name of fs.readdirSync(p).sort()) {
      if (name === ".terraform" || name === "node_modules") continue;
      tfFiles(path.join(p, name), out);
    }
  } else if (p.endsWith(".tf")) {
    out.push(p);
  }
  return out;
}

async function main() {
  const args = process.argv.slice(2);
  if (args.length === 0) {
    console.error("usage: hcl2json.js PATH... (a .tf file or a directory)");
    process.exit(2);
  }
  const files = [];
  for (const a of args) {
    if (!fs.existsSync(a)) {
      console.error(`${a}: no such file or directory`);
      process.exit(2);
    }
    tfFiles(a, files);
  }
  const result = {};
  let failed = 0;
  for (const file of files) {
    const rel = path.relative(process.cwd(), file) || file;
    try {
      result[rel] = await parse(rel, fs.readFileSync(file, "utf8"));
    } catch (e) {
      failed += 1;
      // The parser reports `parse config: [file:line,col-col: summary; detail]`.
      const msg = String(e && e.message ? e.message : e)
        .replace(/^Error:\s*/, "")
        .replace(/^parse config:\s*\[/, "")
        .replace(/\]$/, "");
      console.error(msg);
    }
  }
  if (failed > 0) {
    console.error(`${failed} of ${files.length} Terraform file(s) do not parse`);
    process.exit(1);
  }
  process.stdout.write(JSON.stringify(result, null, 1) + "\n");
}

main().catch((e) => {
  console.error(String(e));
  process.exit(1);
});
