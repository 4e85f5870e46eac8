package org.hybrimoe.api;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import org.hybrimoe.expert.ExpertFormat;
import org.hybrimoe.model.ExecutorStats;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * generate() on the HuggingFace fixtures: greedy ids as HF produced them, EOS ending a generation,
 * the same ids under every policy bundle, and the per-request statistics adding up.
 */
class ModelGenerateTest {
  @TempDir Path tmp;

  static FixtureModels.Fixture fixture(String name) {
    return switch (name) {
      case "mixtral" -> FixtureModels.MIXTRAL;
      case "qwen" -> FixtureModels.QWEN;
      default -> FixtureModels.DEEPSEEK;
    };
  }

  // f32 experts on the CPU: HF's numbers within 1e-4, so its greedy choices exactly.
  static ModelOptions exact() {
    return ModelOptions.builder().device(ModelOptions.Device.CPU).expertFormat(ExpertFormat.F32).threads(1).build();
  }

  @ParameterizedTest
  @ValueSource(strings = {"mixtral", "qwen", "deepseek"})
  void greedyIdsReproduceHuggingFace(String name) throws IOException {
    FixtureModels.Fixture f = fixture(name);
    JsonNode ref = FixtureModels.reference(f);
    int[] prompt = FixtureModels.ints(ref.get(f.promptField()));
    int[] want = FixtureModels.ints(ref.get(f.idsField()));
    try (Model m = Model.load(FixtureModels.dir(f, tmp), exact())) {
      GenerationResult r = m.generate(GenerateRequest.builder().promptTokens(prompt).maxTokens(want.length)
          .ignoreEos(true).build());
      assertArrayEquals(want, r.tokens(), name);
      assertEquals(FinishReason.MAX_TOKENS, r.finishReason());
      assertEquals(prompt.length, r.timings().promptTokens());
      assertEquals(want.length - 1, r.timings().decodeTokens());
      assertEquals("", r.text(), "no tokenizer, no text");
    }
  }

  @Test
  void eosEndsTheGenerationAndIsKeptInTheIds() throws IOException {
    FixtureModels.Fixture f = FixtureModels.QWEN;
    JsonNode ref = FixtureModels.reference(f);
    int eos = ref.get("eos_token_id").asInt();
    int[] greedy = FixtureModels.ints(ref.get("greedy_ids"));
    int at = Arrays.stream(greedy).boxed().toList().indexOf(eos);
    assertTrue(at >= 0, "the fixture's greedy ids reach its EOS");
    try (Model m = Model.load(FixtureModels.dir(f, tmp), exact())) {
      assertTrue(m.eosIds().contains(eos), "eos_token_id read from config.json: " + m.eosIds());
      GenerationResult r = m.generate(GenerateRequest.builder()
          .promptTokens(FixtureModels.ints(ref.get("input_ids"))).maxTokens(16).build());
      assertEquals(FinishReason.EOS, r.finishReason());
      assertArrayEquals(Arrays.copyOf(greedy, at + 1), r.tokens());
    }
  }

  @ParameterizedTest
  @ValueSource(strings = {"mixtral", "qwen", "deepseek"})
  void everyBundleGivesTheSameTokens(String name) throws IOException {
    FixtureModels.Fixture f = fixture(name);
    JsonNode ref = FixtureModels.reference(f);
    int[] prompt = FixtureModels.ints(ref.get(f.promptField()));
    Path dir = FixtureModels.dir(f, tmp);
    GenerateRequest req = GenerateRequest.builder().promptTokens(prompt).maxTokens(4).ignoreEos(true).build();
    int[] want;
    try (Model m = Model.load(dir, ModelOptions.builder().device(ModelOptions.Device.CPU).threads(1).build())) {
      want = m.generate(req).tokens(); // bf16 experts on the CPU
    }
    for (String b : List.of("hybrimoe", "ktransformers", "llamacpp", "gpu-only", "adapmoe", "fiddler")) {
      for (double ratio : new double[] {0.25, 0.75}) {
        ModelOptions o = ModelOptions.builder().device(ModelOptions.Device.EMULATED).bundle(b).cacheRatio(ratio)
            .threads(1).build();
        try (Model m = Model.load(dir, o)) {
          GenerationResult r = m.generate(req);
          assertArrayEquals(want, r.tokens(), name + " " + b + " " + ratio);
          ExecutorStats s = r.stats();
          assertEquals(s.activations(), s.cpuTotal() + s.gpuTotal(), b + ": every activation ran somewhere");
          assertTrue(s.hits() <= s.activations());
        }
      }
    }
  }

  @Test
  void contextLimitEndsTheGeneration() throws IOException {
    FixtureModels.Fixture f = FixtureModels.MIXTRAL;
    int[] prompt = {22, 25, 29, 38, 36};
    ModelOptions o = ModelOptions.builder().device(ModelOptions.Device.CPU).threads(1).maxContext(8).build();
    try (Model m = Model.load(FixtureModels.dir(f, tmp), o)) {
      GenerationResult r = m.generate(GenerateRequest.builder().promptTokens(prompt).maxTokens(10).ignoreEos(true)
          .build());
      assertEquals(FinishReason.CONTEXT_LIMIT, r.finishReason());
      assertEquals(8 - prompt.length + 1, r.tokens().length, "every position used, the last token never fed back");
      assertThrows(IllegalArgumentException.class, () -> m.generate(GenerateRequest.builder()
          .promptTokens(1, 2, 3, 4, 5, 6, 7, 8).build()), "a prompt filling the context leaves no room");
    }
  }

  @Test
  void badRequestsAreClearErrors() throws IOException {
    try (Model m = Model.load(FixtureModels.dir(FixtureModels.MIXTRAL, tmp), exact())) {
      IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
          () -> m.generate(GenerateRequest.builder().prompt("hello").build()));
      assertTrue(e.getMessage().contains("tokenizer.json"), e.getMessage());
      e = assertThrows(IllegalArgumentException.class,
          () -> m.generate(GenerateRequest.builder().promptTokens(3, 48).build()));
      assertTrue(e.getMessage().contains("48"), e.getMessage());
    }
    assertThrows(IllegalArgumentException.class, () -> GenerateRequest.builder().maxTokens(0).promptTokens(1).build());
    assertThrows(IllegalArgumentException.class, () -> GenerateRequest.builder().topP(0).promptTokens(1).build());
    assertThrows(IllegalArgumentException.class, () -> GenerateRequest.builder().temperature(-1).promptTokens(1).build());
    assertThrows(IllegalArgumentException.class, () -> GenerateRequest.builder().build());
    assertThrows(IllegalArgumentException.class, () -> GenerateRequest.builder().prompt("a").promptTokens(1).build());
    assertThrows(IllegalArgumentException.class, () -> ModelOptions.builder().expertFormat(ExpertFormat.F32).build(),
        "f32 experts need the CPU device");
    assertThrows(IllegalArgumentException.class, () -> ModelOptions.builder().bundle("nonsense"));
    assertThrows(IllegalArgumentException.class, () -> ModelOptions.builder().bundle("ktransformers").prefetchDepth(2)
        .build(), "ktransformers-like does not prefetch");
  }

  @Test
  void closedModelRefusesRequests() throws IOException {
    Model m = Model.load(FixtureModels.dir(FixtureModels.MIXTRAL, tmp), exact());
    TokenStream s = m.stream(GenerateRequest.builder().promptTokens(22, 25).maxTokens(3).build());
    s.next();
    m.close();
    assertThrows(IllegalStateException.class, s::hasNext);
    assertEquals(FinishReason.CANCELLED, s.result().finishReason());
    assertThrows(IllegalStateException.class, () -> m.generate(GenerateRequest.builder().promptTokens(1).build()));
    m.close(); // idempotent
  }
}
