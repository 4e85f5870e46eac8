package org.hybrimoe.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Path;
import org.hybrimoe.api.GenerateRequest;
import org.hybrimoe.api.GenerationResult;
import org.hybrimoe.api.Model;
import org.hybrimoe.api.ModelOptions;
import org.hybrimoe.ops.KvCache;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * A bf16 KV cache against the f32 one on the same model (GQA and MLA's key-only cache): logits
 * of a prefill and of decode steps agree to bf16's rounding of keys and values, and differ (the
 * cache really is bf16); the API option reaches the session. The kernels' exactness on rounded
 * inputs is checked against a double reference in ctest dense.
 */
class KvCacheDtypeTest {
  @ParameterizedTest
  @ValueSource(strings = {"qwen3_moe", "deepseek_v2"})
  void bf16CacheFollowsTheF32Cache(String arch, @TempDir Path dir) throws IOException {
    ModelMaker.Spec s = ModelMaker.Spec.defaults(arch);
    ModelMaker.write(new ModelMaker.Spec(s.arch(), 2, 64, 8, 2, s.expertFf(), s.heads(), s.kvHeads(), s.vocab(),
        s.sharedFf(), s.denseFf(), s.denseLayers(), s.kvLoraRank(), s.qLoraRank(), s.rope(), s.nope(), s.vDim(),
        s.nShared(), s.routedScale(), s.normTopk(), s.yarn(), 3, "BF16", false, 1), dir);
    int[] prompt = {5, 17, 2, 60, 33, 8, 91, 40};
    try (CausalLm m = ModelRegistry.load(dir, new LoadOptions(1, null, 32));
        Session f = m.newSession(16, KvCache.Dtype.F32);
        Session b = m.newSession(16, KvCache.Dtype.BF16)) {
      double err = diff(f.forward(prompt), b.forward(prompt));
      for (int t : new int[] {7, 3, 12}) {
        err = Math.max(err, diff(new float[][] {f.forwardLast(t)}, new float[][] {b.forwardLast(t)}));
      }
      System.out.printf("%s: bf16 KV cache vs f32, max logit difference %.3g%n", arch, err);
      assertTrue(err > 0, "the bf16 cache gave f32's logits exactly: is it bf16?");
      assertTrue(err < 2e-2, arch + ": bf16 KV cache moves logits by " + err);
    }
  }

  @ParameterizedTest
  @ValueSource(strings = {"F32", "BF16"})
  void theApiOptionReachesTheCache(String type, @TempDir Path dir) throws IOException {
    ModelMaker.write(ModelMaker.Spec.defaults("mixtral").withVocab(300), dir);
    ModelOptions o = ModelOptions.builder().device(ModelOptions.Device.CPU).threads(1)
        .kvCache(ModelOptions.KvCacheType.valueOf(type)).build();
    assertEquals(ModelOptions.KvCacheType.valueOf(type), o.kvCache());
    try (Model m = Model.load(dir, o)) {
      GenerationResult r = m.generate(GenerateRequest.builder().promptTokens(1, 2, 3).maxTokens(4).ignoreEos(true).build());
      assertEquals(4, r.tokens().length);
    }
  }

  private static double diff(float[][] a, float[][] b) {
    double m = 0;
    for (int t = 0; t < a.length; t++) {
      for (int i = 0; i < a[t].length; i++) {
        m = Math.max(m, Math.abs(a[t][i] - b[t][i]));
      }
    }
    return m;
  }
}
