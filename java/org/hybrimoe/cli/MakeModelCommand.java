package org.hybrimoe.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.file.Path;
import java.util.Locale;
import java.util.concurrent.Callable;
import org.hybrimoe.model.ModelMaker;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/** {@code make-model}: writes a random-weight model in HuggingFace layout. */
@Command(
    name = "make-model",
    mixinStandardHelpOptions = true,
    description = "Write a random-weight MoE model (config.json + safetensors) in HuggingFace layout.")
final class MakeModelCommand implements Callable<Integer> {
  @Spec picocli.CommandLine.Model.CommandSpec spec;

  @Option(names = "--arch", required = true, description = "mixtral, qwen2_moe, qwen3_moe, olmoe, deepseek_v2 or deepseek_v3.")
  String arch;

  @Option(names = "--out", required = true, description = "Output directory.")
  Path out;

  @Option(names = "--seed", defaultValue = "1", description = "Random seed.")
  long seed;

  @Option(names = "--layers", description = "Decoder layers (default 2).")
  Integer layers;

  @Option(names = "--hidden", description = "Hidden size (default 64).")
  Integer hidden;

  @Option(names = "--experts", description = "Routed experts (default 8).")
  Integer experts;

  @Option(names = "--top-k", description = "Experts per token (default 2).")
  Integer topK;

  @Option(names = "--ff", description = "Routed experts' intermediate size (default 32).")
  Integer ff;

  @Option(names = "--heads", description = "Attention heads (default 4).")
  Integer heads;

  @Option(names = "--kv-heads", description = "KV heads (default 2; DeepSeek ignores it).")
  Integer kvHeads;

  @Option(names = "--vocab", description = "Vocabulary size (default 96; 259 or more also writes a byte-level tokenizer).")
  Integer vocab;

  @Option(names = "--dtype", defaultValue = "f32",
      description = "f32, bf16, f16 or fp8 (projections and experts as F8_E4M3 with block scales, the rest bf16).")
  String dtype;

  @Option(names = "--fp8-block", paramLabel = "ROWS,COLS",
      description = "fp8 weight_block_size (default 128,128; 24,40 below hidden 512, for several and partial blocks).")
  String fp8Block;

  @Option(names = "--layout", defaultValue = "packed", description = "packed (gate_up_proj) or classic (per-expert tensors).")
  String layout;

  @Option(names = "--shards", defaultValue = "1", description = "Safetensors files (>1 writes an index).")
  int shards;

  @Option(names = "--yarn", description = "DeepSeek: YaRN rope_scaling (factor 4).")
  boolean yarn;

  @Option(names = "--kv-lora-rank", description = "DeepSeek: latent size kv_lora_rank (default 16; V2-Lite 512).")
  Integer kvLoraRank;

  @Option(names = "--rope-dim", description = "DeepSeek: qk_rope_head_dim (default 8; V2-Lite 64).")
  Integer ropeDim;

  @Option(names = "--nope-dim", description = "DeepSeek: qk_nope_head_dim (default 8; V2-Lite 128).")
  Integer nopeDim;

  @Option(names = "--v-dim", description = "DeepSeek: v_head_dim (default 8; V2-Lite 128).")
  Integer vDim;

  @Option(names = "--max-positions", description = "max_position_embeddings, the longest context (default 256).")
  Integer maxPositions;

  @Override
  public Integer call() throws Exception {
    ModelMaker.Spec d = ModelMaker.Spec.defaults(arch);
    if (!layout.equals("packed") && !layout.equals("classic")) {
      throw new IllegalArgumentException("--layout must be packed or classic, got " + layout);
    }
    ModelMaker.Spec s = new ModelMaker.Spec(
        arch, or(layers, d.layers()), or(hidden, d.hidden()), or(experts, d.experts()), or(topK, d.topK()),
        or(ff, d.expertFf()), or(heads, d.heads()), or(kvHeads, d.kvHeads()), or(vocab, d.vocab()),
        d.sharedFf(), d.denseFf(), d.denseLayers(), or(kvLoraRank, d.kvLoraRank()), d.qLoraRank(),
        or(ropeDim, d.rope()), or(nopeDim, d.nope()), or(vDim, d.vDim()), d.nShared(), d.routedScale(), d.normTopk(), yarn, seed, dtype.toUpperCase(Locale.ROOT),
        layout.equals("packed"), shards);
    if (fp8Block == null) {
      ModelMaker.write(s, out);
    } else {
      String[] rc = fp8Block.split(",");
      if (rc.length != 2) {
        throw new IllegalArgumentException("--fp8-block must be ROWS,COLS, got " + fp8Block);
      }
      ModelMaker.write(s, out, Integer.parseInt(rc[0].trim()), Integer.parseInt(rc[1].trim()));
    }
    if (maxPositions != null) {
      if (maxPositions < 1) {
        throw new IllegalArgumentException("--max-positions must be >= 1, got " + maxPositions);
      }
      Path cfg = out.resolve("config.json");
      ObjectMapper json = new ObjectMapper();
      ObjectNode c = (ObjectNode) json.readTree(cfg.toFile());
      c.put("max_position_embeddings", maxPositions);
      json.writerWithDefaultPrettyPrinter().writeValue(cfg.toFile(), c);
    }
    spec.commandLine().getOut().printf("wrote %s model to %s%s%n", arch, out, s.vocab() >= ModelMaker.MIN_TOKENIZER_VOCAB
        ? " with a byte-level tokenizer" : " (no tokenizer: --vocab " + ModelMaker.MIN_TOKENIZER_VOCAB
        + " or more adds one)");
    spec.commandLine().getOut().flush();
    return 0;
  }

  private static int or(Integer v, int def) {
    return v == null ? def : v;
  }
}
