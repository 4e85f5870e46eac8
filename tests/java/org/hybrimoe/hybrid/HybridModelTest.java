package org.hybrimoe.hybrid;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import org.hybrimoe.expert.ExpertFormat;
import org.hybrimoe.model.CausalLm;
import org.hybrimoe.model.LoadOptions;
import org.hybrimoe.model.ModelMaker;
import org.hybrimoe.model.ModelRegistry;
import org.hybrimoe.model.Session;
import org.hybrimoe.policy.PolicyBundle;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A whole model with every MoE layer through the hybrid executor (emulated device, and CPU only):
 * prefill and KV-cached decode logits equal the CPU executor's, whichever bundle plans.
 */
class HybridModelTest {
  static float[][] logits(Path dir, LoadOptions o, int[] prompt, int[] next) throws IOException {
    try (CausalLm m = ModelRegistry.load(dir, o); Session s = m.newSession(prompt.length + next.length)) {
      float[][] p = s.forward(prompt);
      float[][] out = new float[prompt.length + next.length][];
      System.arraycopy(p, 0, out, 0, p.length);
      for (int i = 0; i < next.length; i++) {
        out[prompt.length + i] = s.forwardLast(next[i]);
      }
      return out;
    }
  }

  static double maxDiff(float[][] a, float[][] b) {
    double m = 0;
    double scale = 0;
    for (int t = 0; t < a.length; t++) {
      for (int i = 0; i < a[t].length; i++) {
        m = Math.max(m, Math.abs(a[t][i] - b[t][i]));
        scale = Math.max(scale, Math.abs(b[t][i]));
      }
    }
    return m / Math.max(scale, 1e-30);
  }

  @Test
  void modelLogitsMatchTheCpuExecutorUnderEveryPlanner(@TempDir Path dir) throws IOException {
    for (String arch : List.of("mixtral", "qwen2_moe")) {
      Path d = dir.resolve(arch);
      ModelMaker.Spec s = ModelMaker.Spec.defaults(arch);
      ModelMaker.write(new ModelMaker.Spec(s.arch(), 3, s.hidden(), s.experts(), s.topK(), s.expertFf(), s.heads(),
          s.kvHeads(), s.vocab(), s.sharedFf(), s.denseFf(), s.denseLayers(), s.kvLoraRank(), s.qLoraRank(), s.rope(),
          s.nope(), s.vDim(), s.nShared(), s.routedScale(), s.normTopk(), s.yarn(), s.seed(), "BF16", s.packed(),
          s.shards()), d);
      int[] prompt = {3, 14, 15, 9, 2, 6, 5};
      int[] next = {35, 8, 9};
      float[][] want = logits(d, new LoadOptions(1, null, 32), prompt, next);
      for (PolicyBundle b : List.of(PolicyBundle.HYBRIMOE, PolicyBundle.KTRANSFORMERS, PolicyBundle.ADAPMOE)) {
        for (HybridExecutors.DeviceKind k : List.of(HybridExecutors.DeviceKind.EMULATED, HybridExecutors.DeviceKind.NONE)) {
          LoadOptions o = new LoadOptions(1, null, 32)
              .withExecutors(HybridExecutors.factory(b, 0.5, k, ExpertFormat.BF16));
          float[][] got = logits(d, o, prompt, next);
          double err = maxDiff(got, want);
          assertTrue(err < 1e-4, arch + " " + b.name() + " " + k + ": " + err);
        }
      }
    }
  }

  /**
   * An FP8 checkpoint's experts and shared experts are bf16 copies in direct memory, not the
   * mapped file: the emulated device loads and pins them as it does mapped bf16 weights.
   */
  @Test
  void fp8CheckpointRunsThroughTheHybridExecutor(@TempDir Path dir) throws IOException {
    ModelMaker.Spec s = ModelMaker.Spec.defaults("deepseek_v2");
    ModelMaker.write(new ModelMaker.Spec(s.arch(), 3, s.hidden(), s.experts(), s.topK(), s.expertFf(), s.heads(),
        s.kvHeads(), s.vocab(), s.sharedFf(), s.denseFf(), s.denseLayers(), s.kvLoraRank(), s.qLoraRank(), s.rope(),
        s.nope(), s.vDim(), s.nShared(), s.routedScale(), s.normTopk(), s.yarn(), s.seed(), "FP8", false,
        s.shards()), dir);
    int[] prompt = {3, 14, 15, 9, 2, 6, 5};
    int[] next = {35, 8, 9};
    float[][] want = logits(dir, new LoadOptions(1, null, 32), prompt, next);
    LoadOptions o = new LoadOptions(1, null, 32).withExecutors(
        HybridExecutors.factory(PolicyBundle.HYBRIMOE, 0.5, HybridExecutors.DeviceKind.EMULATED, ExpertFormat.BF16));
    double err = maxDiff(logits(dir, o, prompt, next), want);
    assertTrue(err < 1e-4, "fp8 deepseek_v2 through the emulated device: " + err);
    try (CausalLm m = ModelRegistry.load(dir, o)) {
      for (int l = s.denseLayers(); l < 3; l++) {
        assertTrue(m.experts().runsSharedExpert(l), "layer " + l + "'s shared experts are not on the device");
      }
    }
  }
}
