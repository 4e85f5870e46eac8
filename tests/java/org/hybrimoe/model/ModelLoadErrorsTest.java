package org.hybrimoe.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Corrupt or inconsistent model directories: each is an exception whose message names the file
 * and the tensor or config field at fault, never a crash.
 */
class ModelLoadErrorsTest {
  static final LoadOptions OPTS = new LoadOptions(1, null, 32);

  static Path make(Path dir, String arch) throws IOException {
    ModelMaker.write(ModelMaker.Spec.defaults(arch), dir);
    return dir;
  }

  static Exception loadFails(Path dir) {
    Exception e = assertThrows(Exception.class, () -> ModelRegistry.load(dir, OPTS).close());
    assertTrue(e instanceof IOException || e instanceof ModelFormatException, "unexpected " + e);
    return e;
  }

  static void assertMentions(Exception e, String... parts) {
    for (String p : parts) {
      assertTrue(e.getMessage().contains(p), "'" + p + "' missing from: " + e.getMessage());
    }
  }

  // Replaces a same-length string inside the safetensors header.
  static void patchHeader(Path file, String from, String to) throws IOException {
    assertEquals(from.length(), to.length());
    byte[] b = Files.readAllBytes(file);
    long n = ByteBuffer.wrap(b, 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
    String h = new String(b, 8, (int) n, StandardCharsets.UTF_8);
    assertTrue(h.contains(from), from);
    byte[] nh = h.replace(from, to).getBytes(StandardCharsets.UTF_8);
    System.arraycopy(nh, 0, b, 8, nh.length);
    Files.write(file, b);
  }

  static void editConfig(Path dir, String field, Object value) throws IOException {
    ObjectMapper m = new ObjectMapper();
    ObjectNode c = (ObjectNode) m.readTree(dir.resolve("config.json").toFile());
    if (value == null) {
      c.remove(field);
    } else if (value instanceof Integer i) {
      c.put(field, i);
    } else {
      c.put(field, value.toString());
    }
    m.writeValue(dir.resolve("config.json").toFile(), c);
  }

  @Test
  void truncatedSafetensorsNamesFileAndTensor(@TempDir Path tmp) throws IOException {
    Path dir = make(tmp, "mixtral");
    Path f = dir.resolve("model.safetensors");
    byte[] b = Files.readAllBytes(f);
    Files.write(f, java.util.Arrays.copyOf(b, b.length - 100));
    Exception e = loadFails(dir);
    assertMentions(e, "model.safetensors", "lm_head.weight", "outside");
  }

  @Test
  void headerLengthPastTheEnd(@TempDir Path tmp) throws IOException {
    Path dir = make(tmp, "mixtral");
    Path f = dir.resolve("model.safetensors");
    byte[] b = Files.readAllBytes(f);
    ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN).putLong(0, b.length + 10L);
    Files.write(f, b);
    assertMentions(loadFails(dir), "model.safetensors", "header length");
  }

  /** A header length that cuts into the JSON's padding would shift every tensor: a format error. */
  @Test
  void headerLengthShortOfThePaddingIsAFormatError(@TempDir Path tmp) throws IOException {
    Path dir = make(tmp, "mixtral");
    Path f = dir.resolve("model.safetensors");
    byte[] b = Files.readAllBytes(f);
    long n = ByteBuffer.wrap(b, 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
    String h = new String(b, 8, (int) n, StandardCharsets.UTF_8);
    // The same JSON followed by 8 spaces of padding, then the data; the length field 4 bytes short.
    byte[] json = (h.stripTrailing() + "        ").getBytes(StandardCharsets.UTF_8);
    ByteBuffer nb = ByteBuffer.allocate(8 + json.length + (b.length - 8 - (int) n)).order(ByteOrder.LITTLE_ENDIAN);
    nb.putLong(json.length - 4).put(json).put(b, 8 + (int) n, b.length - 8 - (int) n);
    Files.write(f, nb.array());
    Exception e = assertThrows(ModelFormatException.class, () -> ModelRegistry.load(dir, OPTS).close());
    assertMentions(e, "model.safetensors", "data section");
  }

  @Test
  void overlappingTensors(@TempDir Path tmp) throws IOException {
    Path dir = make(tmp, "mixtral");
    // Point the final norm's data at the embedding's first bytes (same length): an overlap.
    Path f = dir.resolve("model.safetensors");
    byte[] b = Files.readAllBytes(f);
    long n = ByteBuffer.wrap(b, 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
    String h = new String(b, 8, (int) n, StandardCharsets.UTF_8);
    ObjectNode hdr = (ObjectNode) new ObjectMapper().readTree(h);
    var norm = (ObjectNode) hdr.get("model.norm.weight");
    var offs = norm.withArray("data_offsets");
    long len = offs.get(1).asLong() - offs.get(0).asLong();
    offs.removeAll().add(0).add(len);
    byte[] nh = new ObjectMapper().writeValueAsString(hdr).getBytes(StandardCharsets.UTF_8);
    byte[] padded = new byte[(int) n];
    java.util.Arrays.fill(padded, (byte) ' ');
    assertTrue(nh.length <= n);
    System.arraycopy(nh, 0, padded, 0, nh.length);
    System.arraycopy(padded, 0, b, 8, (int) n);
    Files.write(f, b);
    assertMentions(loadFails(dir), "model.safetensors", "model.norm.weight", "overlap");
  }

  @Test
  void wrongDtypeNamesTheTensor(@TempDir Path tmp) throws IOException {
    Path dir = make(tmp, "qwen2_moe");
    String t = "\"model.layers.1.self_attn.q_proj.weight\":{\"dtype\":\"";
    patchHeader(dir.resolve("model.safetensors"), t + "F32", t + "I32");
    assertMentions(loadFails(dir), "model.safetensors", "model.layers.1.self_attn.q_proj.weight", "I32");
  }

  @Test
  void missingTensorNamesTheTensor(@TempDir Path tmp) throws IOException {
    Path dir = make(tmp, "deepseek_v2");
    patchHeader(dir.resolve("model.safetensors"), "model.layers.1.self_attn.kv_b_proj.weight",
        "model.layers.1.self_attn.kv_b_proj.wxight");
    assertMentions(loadFails(dir), "model.safetensors", "missing tensor 'model.layers.1.self_attn.kv_b_proj.weight'");
  }

  @Test
  void configContradictingWeightsNamesFieldAndTensor(@TempDir Path tmp) throws IOException {
    Path dir = make(tmp, "mixtral");
    editConfig(dir, "num_local_experts", 4); // the weights hold 8
    assertMentions(loadFails(dir), "model.safetensors", "model.layers.0.mlp.experts.gate_up_proj",
        "num_local_experts", "[4, 64, 64]");
    editConfig(dir, "num_local_experts", 8);
    editConfig(dir, "num_hidden_layers", 1); // the weights hold 2
    assertMentions(loadFails(dir), "config.json", "num_hidden_layers");
    editConfig(dir, "num_hidden_layers", 2);
    editConfig(dir, "head_dim", 8); // 4 heads x 8 != q_proj's 64 rows
    assertMentions(loadFails(dir), "model.layers.0.self_attn.q_proj.weight", "head_dim");
  }

  @Test
  void classicExpertCountBeyondConfig(@TempDir Path tmp) throws IOException {
    ModelMaker.Spec s = ModelMaker.Spec.defaults("olmoe");
    ModelMaker.write(new ModelMaker.Spec(s.arch(), s.layers(), s.hidden(), s.experts(), s.topK(), s.expertFf(),
        s.heads(), s.kvHeads(), s.vocab(), s.sharedFf(), s.denseFf(), s.denseLayers(), s.kvLoraRank(),
        s.qLoraRank(), s.rope(), s.nope(), s.vDim(), s.nShared(), s.routedScale(), s.normTopk(), false,
        s.seed(), "F32", false, 1), tmp);
    editConfig(tmp, "num_experts", 6);
    assertMentions(loadFails(tmp), "model.layers.0.mlp.experts.6.gate_proj.weight", "6 experts");
  }

  @Test
  void unknownModelTypeAndMissingFields(@TempDir Path tmp) throws IOException {
    Path dir = make(tmp, "qwen3_moe");
    editConfig(dir, "model_type", "gpt2");
    assertMentions(loadFails(dir), "config.json", "model_type", "gpt2", "mixtral");
    editConfig(dir, "model_type", "qwen3_moe");
    editConfig(dir, "num_attention_heads", null);
    assertMentions(loadFails(dir), "config.json", "'num_attention_heads' is missing");
    editConfig(dir, "num_attention_heads", "four");
    assertMentions(loadFails(dir), "'num_attention_heads' must be an integer");
    editConfig(dir, "num_attention_heads", 4);
    editConfig(dir, "mlp_only_layers", "0");
    assertMentions(loadFails(dir), "'mlp_only_layers' must be a list of integers");
  }

  @Test
  void shardIndexNamingAMissingShard(@TempDir Path tmp) throws IOException {
    ModelMaker.Spec s = ModelMaker.Spec.defaults("mixtral");
    ModelMaker.write(new ModelMaker.Spec(s.arch(), s.layers(), s.hidden(), s.experts(), s.topK(), s.expertFf(),
        s.heads(), s.kvHeads(), s.vocab(), s.sharedFf(), s.denseFf(), s.denseLayers(), s.kvLoraRank(),
        s.qLoraRank(), s.rope(), s.nope(), s.vDim(), s.nShared(), s.routedScale(), s.normTopk(), false,
        s.seed(), "F32", true, 3), tmp);
    Files.delete(tmp.resolve("model-00002-of-00003.safetensors"));
    assertMentions(loadFails(tmp), "model.safetensors.index.json", "model-00002-of-00003.safetensors", "does not exist");
  }

  // An FP8 mixtral whose first weight read is layer 0's q_proj.
  static Path makeFp8(Path dir) throws IOException {
    ModelMaker.write(ReferenceModelTest.with(ModelMaker.Spec.defaults("mixtral"), 2, 64, 8, 2, "FP8", false, 1, 0,
        false), dir);
    return dir;
  }

  static final String Q = "model.layers.0.self_attn.q_proj.weight";

  // Sets quantization_config.<field> to a JSON value (null: removes the field; field null: the
  // whole quantization_config).
  static void editQuantization(Path dir, String field, String json) throws IOException {
    ObjectMapper m = new ObjectMapper();
    ObjectNode c = (ObjectNode) m.readTree(dir.resolve("config.json").toFile());
    if (field == null) {
      c.remove("quantization_config");
    } else if (json == null) {
      ((ObjectNode) c.get("quantization_config")).remove(field);
    } else {
      ((ObjectNode) c.get("quantization_config")).set(field, m.readTree(json));
    }
    m.writeValue(dir.resolve("config.json").toFile(), c);
  }

  @Test
  void fp8TensorWithoutQuantizationConfig(@TempDir Path tmp) throws IOException {
    Path dir = makeFp8(tmp);
    editQuantization(dir, null, null);
    assertMentions(loadFails(dir), "model.safetensors", "'" + Q + "' is F8_E4M3", "config.json has no quantization_config");
  }

  @Test
  void unsupportedQuantizationConfigNamesTheField(@TempDir Path tmp) throws IOException {
    Path dir = makeFp8(tmp);
    editQuantization(dir, "quant_method", "\"fbgemm_fp8\"");
    assertMentions(loadFails(dir), "config.json", "'quantization_config'", "fbgemm_fp8");
    editQuantization(dir, "quant_method", "\"fp8\"");
    editQuantization(dir, "fmt", "\"e5m2\"");
    assertMentions(loadFails(dir), "config.json", "'quantization_config'", "fmt \"e5m2\"");
    editQuantization(dir, "fmt", "\"e4m3\"");
    for (String bad : new String[] {"[128]", "[128, 128, 1]", "\"128x128\"", "[0, 128]", "[128, 12.5]"}) {
      editQuantization(dir, "weight_block_size", bad);
      assertMentions(loadFails(dir), "config.json", "'quantization_config'", "weight_block_size must be two positive");
    }
    editQuantization(dir, "weight_block_size", null);
    assertMentions(loadFails(dir), "config.json", "'quantization_config'", "has no weight_block_size");
  }

  @Test
  void e5m2TensorIsRefused(@TempDir Path tmp) throws IOException {
    Path dir = makeFp8(tmp);
    String t = "\"" + Q + "\":{\"dtype\":\"";
    patchHeader(dir.resolve("model.safetensors"), t + "F8_E4M3", t + "F8_E5M2");
    assertMentions(loadFails(dir), "model.safetensors", Q, "F8_E5M2", "must be F8_E4M3");
  }

  @Test
  void fp8ScalesMissingOrOfTheWrongDtypeOrShape(@TempDir Path tmp) throws IOException {
    Path dir = makeFp8(tmp);
    Path f = dir.resolve("model.safetensors");
    byte[] intact = Files.readAllBytes(f);
    patchHeader(f, "\"" + Q + "_scale_inv\"", "\"" + Q + "_scale_inx\"");
    assertMentions(loadFails(dir), "model.safetensors", "'" + Q + "' is F8_E4M3 but its scales '" + Q + "_scale_inv' are missing");
    Files.write(f, intact);
    String t = "\"" + Q + "_scale_inv\":{\"dtype\":\"";
    patchHeader(f, t + "F32", t + "I32");
    assertMentions(loadFails(dir), "model.safetensors", Q + "_scale_inv' has dtype I32", "F32 or BF16");
    Files.write(f, intact);
    // q_proj [64, 64] in blocks [16, 16] needs scales [4, 4]; the file has [3, 2] for [24, 40].
    editQuantization(dir, "weight_block_size", "[16, 16]");
    assertMentions(loadFails(dir), "model.safetensors", Q + "_scale_inv' has shape [3, 2]", "[64, 64]",
        "weight_block_size [16, 16]", "implies [4, 4]");
  }

  @Test
  void nanCodeInAnFp8Weight(@TempDir Path tmp) throws IOException {
    Path dir = makeFp8(tmp);
    Path f = dir.resolve("model.safetensors");
    long at;
    try (org.hybrimoe.weights.SafetensorsFile st = org.hybrimoe.weights.SafetensorsFile.open(f)) {
      byte[] b = Files.readAllBytes(f);
      long n = ByteBuffer.wrap(b, 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
      at = 8 + n + st.tensor(Q).begin() + 5 * 64 + 7; // row 5, column 7
    }
    byte[] b = Files.readAllBytes(f);
    b[(int) at] = (byte) 0xff;
    Files.write(f, b);
    assertMentions(loadFails(dir), "model.safetensors", Q, "NaN code", "row 5");
  }

  @Test
  void noWeightsAtAll(@TempDir Path tmp) throws IOException {
    Path dir = make(tmp, "mixtral");
    Files.delete(dir.resolve("model.safetensors"));
    assertMentions(loadFails(dir), "neither model.safetensors nor model.safetensors.index.json");
  }
}
