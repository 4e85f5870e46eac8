package org.hybrimoe.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.Locale;
import java.util.concurrent.Callable;
import org.hybrimoe.expert.ExpertFormat;
import org.hybrimoe.model.CausalLm;
import org.hybrimoe.model.LoadOptions;
import org.hybrimoe.model.ModelRegistry;
import org.hybrimoe.model.Session;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * {@code logits}: loads a HuggingFace model directory and prints the logits of every position of
 * a token sequence (one prefill pass on the CPU engine).
 */
@Command(
    name = "logits",
    mixinStandardHelpOptions = true,
    description = "Print the logits of every position of a token sequence.")
final class LogitsCommand implements Callable<Integer> {
  @Spec picocli.CommandLine.Model.CommandSpec spec;

  @Option(names = "--model", required = true, description = "Model directory (config.json, model.safetensors or a sharded index).")
  Path model;

  @Option(names = "--config", description = "Use this config file instead of <model>/config.json; --model is then the safetensors file.")
  Path config;

  @Option(names = "--tokens", required = true, split = ",", description = "Token ids, comma separated.")
  int[] tokens;

  @Option(names = "--threads", defaultValue = "0", description = "Engine threads (0: one per physical core).")
  int threads;

  @Option(names = "--json", description = "Print {\"logits\": [[...], ...]}.")
  boolean json;

  @Option(names = "--experts", description = "Convert routed experts at load: bf16, int8 or int4 (default: as stored).")
  String experts;

  @Option(names = "--group-size", defaultValue = "32", description = "int4 group size: 32, 64 or 128.")
  int groupSize;

  @Override
  public Integer call() throws Exception {
    ExpertFormat format = null;
    if (experts != null) {
      format = switch (experts.toLowerCase(Locale.ROOT)) {
        case "bf16" -> ExpertFormat.BF16;
        case "int8" -> ExpertFormat.INT8;
        case "int4" -> ExpertFormat.INT4;
        default -> throw new IllegalArgumentException("--experts must be bf16, int8 or int4, got " + experts);
      };
    }
    LoadOptions opts = new LoadOptions(threads, format, groupSize);
    try (CausalLm m = config == null ? ModelRegistry.load(model, opts) : ModelRegistry.load(config, model, opts);
        Session s = m.newSession(tokens.length)) {
      float[][] logits = s.forward(tokens);
      PrintWriter out = spec.commandLine().getOut();
      if (json) {
        ObjectMapper mapper = new ObjectMapper();
        ObjectNode root = mapper.createObjectNode();
        ArrayNode rows = root.putArray("logits");
        for (float[] row : logits) {
          ArrayNode r = rows.addArray();
          for (float v : row) {
            r.add(v);
          }
        }
        out.println(mapper.writeValueAsString(root));
      } else {
        for (int t = 0; t < logits.length; t++) {
          StringBuilder b = new StringBuilder();
          b.append("position ").append(t).append(" token ").append(tokens[t]).append(':');
          for (float v : logits[t]) {
            b.append(' ').append(v);
          }
          out.println(b);
        }
      }
      out.flush();
    }
    return 0;
  }
}
