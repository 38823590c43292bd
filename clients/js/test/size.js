// Prints the module's size: raw, minified (terser) and minified+gzipped.
import { readFileSync } from "node:fs";
import { gzipSync } from "node:zlib";
import { minify } from "terser";
const src = readFileSync(new URL("../ssekit-client.js", import.meta.url), "utf8");
const min = (await minify(src, { module: true, compress: true, mangle: true })).code;
const gz = gzipSync(min, { level: 9 }).length;
console.log(JSON.stringify({ raw: src.length, minified: min.length, minifiedGzip: gz }));
if (gz >= 10 * 1024) { console.error("over 10 KB minified+gzipped"); process.exit(1); }
