package org.hybrimoe.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Consumer;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * rope_scaling (linear, yarn) on the GQA architectures, OLMoE's clip_qkv and sliding-window
 * attention (Mistral's sliding_window, Qwen's use_sliding_window), engine against the
 * float64 {@link ReferenceForward} on make-model outputs whose config.json is edited; every
 * variant is also checked to change the reference's logits (so a loader that ignored it would
 * fail); unsupported variants fail naming the field.
 */
class RopeScalingTest {
  private static final ObjectMapper JSON = new ObjectMapper();

  static Stream<Arguments> cases() {
    List<Arguments> out = new ArrayList<>();
    for (String arch : List.of("mixtral", "qwen2_moe", "qwen3_moe", "olmoe")) {
      out.add(Arguments.of(arch + " linear 2.5", arch, (Consumer<ObjectNode>) c ->
          c.putObject("rope_scaling").put("type", "linear").put("factor", 2.5)));
      out.add(Arguments.of(arch + " yarn 4 at 64", arch, (Consumer<ObjectNode>) c ->
          c.putObject("rope_scaling").put("rope_type", "yarn").put("factor", 4.0)
              .put("original_max_position_embeddings", 64)));
    }
    out.add(Arguments.of("qwen3_moe yarn, max_position_embeddings, attention_factor", "qwen3_moe",
        (Consumer<ObjectNode>) c -> c.putObject("rope_scaling").put("rope_type", "yarn").put("factor", 8.0)
            .put("attention_factor", 1.3).put("beta_fast", 16)));
    out.add(Arguments.of("mixtral yarn mscale ratio", "mixtral", (Consumer<ObjectNode>) c ->
        c.putObject("rope_scaling").put("type", "yarn").put("factor", 3.0).put("mscale", 1.0)
            .put("mscale_all_dim", 0.5).put("original_max_position_embeddings", 32)));
    out.add(Arguments.of("olmoe clip_qkv 0.3", "olmoe", (Consumer<ObjectNode>) c -> c.put("clip_qkv", 0.3)));
    out.add(Arguments.of("mixtral sliding_window 4", "mixtral", (Consumer<ObjectNode>) c -> c.put("sliding_window", 4)));
    out.add(Arguments.of("qwen3_moe use_sliding_window 3 from layer 1", "qwen3_moe", (Consumer<ObjectNode>) c -> {
      c.put("use_sliding_window", true);
      c.put("sliding_window", 3);
      c.put("max_window_layers", 1);
    }));
    out.add(Arguments.of("qwen2_moe use_sliding_window 5 on every layer", "qwen2_moe", (Consumer<ObjectNode>) c -> {
      c.put("use_sliding_window", true);
      c.put("sliding_window", 5);
      c.put("max_window_layers", 0);
    }));
    out.add(Arguments.of("olmoe clip_qkv and yarn", "olmoe", (Consumer<ObjectNode>) c -> {
      c.put("clip_qkv", 0.5);
      c.putObject("rope_scaling").put("type", "yarn").put("factor", 2.0);
    }));
    return out.stream();
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("cases")
  void engineAgreesWithReference(String name, String arch, Consumer<ObjectNode> edit, @TempDir Path dir)
      throws IOException {
    ModelMaker.write(ModelMaker.Spec.defaults(arch), dir);
    int[] ids = {7, 3, 91, 15, 40, 2, 66, 8, 30, 55};
    double[][] plain = new ReferenceForward(dir).forward(ids);
    editConfig(dir, edit);
    double[][] ref = new ReferenceForward(dir).forward(ids);
    double changed = maxDiff(ref, plain);
    assertTrue(changed > 1e-3, name + ": the edit changes the reference's logits by only " + changed);
    try (CausalLm m = ModelRegistry.load(dir, new LoadOptions(2, null, 32));
        Session s = m.newSession(16)) {
      float[][] got = new float[ids.length][];
      System.arraycopy(s.forward(java.util.Arrays.copyOf(ids, 6)), 0, got, 0, 6);
      for (int t = 6; t < ids.length; t++) { // decode steps read the scaled keys from the cache
        got[t] = s.forward(ids[t])[0];
      }
      double[][] g = new double[ids.length][];
      for (int t = 0; t < ids.length; t++) {
        g[t] = new double[got[t].length];
        for (int i = 0; i < got[t].length; i++) {
          g[t][i] = got[t][i];
        }
      }
      double err = maxDiff(g, ref);
      System.out.printf("rope/clip %s: max error %.3g (the edit moves logits by %.3g)%n", name, err, changed);
      assertTrue(err < ReferenceModelTest.TOL * Math.max(1, maxAbs(ref)), name + ": max abs error " + err);
    }
  }

  static Stream<Arguments> refused() {
    return Stream.of(
        Arguments.of("mixtral", "{\"type\": \"dynamic\", \"factor\": 2.0}", "rope_scaling", "dynamic"),
        Arguments.of("qwen3_moe", "{\"rope_type\": \"longrope\", \"factor\": 2.0}", "rope_scaling", "longrope"),
        Arguments.of("qwen2_moe", "{\"type\": \"linear\"}", "rope_scaling", "factor"),
        Arguments.of("olmoe", "{\"type\": \"yarn\", \"factor\": \"big\"}", "rope_scaling", "factor"),
        Arguments.of("mixtral", "{\"type\": \"yarn\", \"factor\": 4, \"original_max_position_embeddings\": -3}",
            "rope_scaling", "original_max_position_embeddings"),
        Arguments.of("mixtral", "[1, 2]", "rope_scaling", "object"));
  }

  @ParameterizedTest(name = "{0} {1}")
  @MethodSource("refused")
  void unsupportedScalingIsRefusedNamingTheField(String arch, String scaling, String field, String detail,
      @TempDir Path dir) throws IOException {
    ModelMaker.write(ModelMaker.Spec.defaults(arch), dir);
    editConfig(dir, c -> {
      try {
        c.set("rope_scaling", JSON.readTree(scaling));
      } catch (IOException e) {
        throw new IllegalStateException(e);
      }
    });
    ModelFormatException e =
        assertThrows(ModelFormatException.class, () -> ModelRegistry.load(dir, new LoadOptions(1, null, 8)).close());
    assertTrue(e.getMessage().contains(field) && e.getMessage().contains(detail), e.getMessage());
    assertTrue(e.getMessage().contains("config.json"), e.getMessage());
  }

  @Test
  void partialRotaryAndBadClipAreRefused(@TempDir Path dir) throws IOException {
    ModelMaker.write(ModelMaker.Spec.defaults("olmoe"), dir);
    editConfig(dir, c -> c.put("partial_rotary_factor", 0.5));
    ModelFormatException e =
        assertThrows(ModelFormatException.class, () -> ModelRegistry.load(dir, new LoadOptions(1, null, 8)).close());
    assertTrue(e.getMessage().contains("partial_rotary_factor"), e.getMessage());
    editConfig(dir, c -> {
      c.remove("partial_rotary_factor");
      c.put("clip_qkv", -1.0);
    });
    e = assertThrows(ModelFormatException.class, () -> ModelRegistry.load(dir, new LoadOptions(1, null, 8)).close());
    assertTrue(e.getMessage().contains("clip_qkv"), e.getMessage());
  }

  @Test
  void defaultTypeAndNullScalingAreThePlainRope(@TempDir Path dir) throws IOException {
    ModelMaker.write(ModelMaker.Spec.defaults("qwen3_moe"), dir);
    ModelConfig plain = ModelConfig.read(dir.resolve("config.json"));
    Rope r = Rope.of(plain, 16, 10000);
    editConfig(dir, c -> c.putNull("rope_scaling"));
    assertEquals(toList(r.invFreq()), toList(Rope.of(ModelConfig.read(dir.resolve("config.json")), 16, 1).invFreq()));
    editConfig(dir, c -> c.putObject("rope_scaling").put("rope_type", "default"));
    Rope d = Rope.of(ModelConfig.read(dir.resolve("config.json")), 16, 1);
    assertEquals(toList(r.invFreq()), toList(d.invFreq()));
    assertEquals(1f, d.scale());
  }

  private static List<Float> toList(float[] a) {
    List<Float> l = new ArrayList<>();
    for (float f : a) {
      l.add(f);
    }
    return l;
  }

  static void editConfig(Path dir, Consumer<ObjectNode> edit) throws IOException {
    ObjectNode c = (ObjectNode) JSON.readTree(dir.resolve("config.json").toFile());
    edit.accept(c);
    JSON.writeValue(dir.resolve("config.json").toFile(), c);
  }

  private static double maxDiff(double[][] a, double[][] b) {
    double m = 0;
    for (int t = 0; t < a.length; t++) {
      for (int i = 0; i < a[t].length; i++) {
        m = Math.max(m, Math.abs(a[t][i] - b[t][i]));
      }
    }
    return m;
  }

  private static double maxAbs(double[][] a) {
    double m = 0;
    for (double[] r : a) {
      for (double v : r) {
        m = Math.max(m, Math.abs(v));
      }
    }
    return m;
  }
}
